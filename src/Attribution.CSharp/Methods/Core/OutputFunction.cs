namespace Attribution.Methods;

/// <summary>
/// The scalar function f of the input that a method explains, for the target class.
/// <c>Probability</c> (the default) is the softmax probability p(y|x), the non-negative f of the
/// Functional Information paper; <c>Logit</c> is the raw score, which can be negative.
/// </summary>
public enum OutputFunction { Probability, Logit }
