namespace Experiments

// A method as the registry holds it: its yaml name, doc and parameters (a Variant: defaults and ranges stated once),
// the facts validation and planning read (what it can explain, what it needs of the model, how it samples), and the
// factory of the engine's method. Shipped entries are one file each under Methods/; a user's entry is built with
// MethodEntry.custom from their own code and registered with MethodRegistry.register.

open Attribution.Methods
open Experiments.Building

/// What the toolkit needs to know of a method beyond its parameters.
type MethodFacts =
    { /// The modalities the method is defined on; another is a located spec error.
      Modalities: Modality list
      /// The named stage the method reads (layer methods); the architecture must have it.
      Stage: string option
      /// The method replaces the model's ReLUs (rule-based backward passes); the architecture must have them.
      ReplacesRelus: bool
      /// The method inverts the model stage by stage (MIP-IN).
      InvertsStages: bool
      /// The method draws around the input: how many draws from which sampler (class covariances come from this).
      Sampling: SamplingParams option
      /// The method divides by f (the Fisher statistic), so f must be a probability, never a logit.
      DividesByOutput: bool
      /// Inputs per call: 50, or 10 for methods that spend seconds an input (each call is stored as a part).
      InputsPerCall: int
      /// Parameters that are sizes in image pixels (yaml key, value): each at most the image's side.
      PixelSizes: (string * int) list }

module MethodFacts =
    /// The method reads the network's inside (a stage, its ReLUs, its stages inverted), not only its outputs and input
    /// gradients: Taylor surrogates and a bfloat16 copy seen at its input and output cannot serve it.
    let readsInside (f: MethodFacts) = f.Stage.IsSome || f.ReplacesRelus || f.InvertsStages

    /// A method that needs only forward passes and input gradients, defined on every modality.
    let everywhere =
        { Modalities = [ Modality.Image; Modality.Audio; Modality.Text; Modality.Tabular ]
          Stage = None
          ReplacesRelus = false
          InvertsStages = false
          Sampling = None
          DividesByOutput = false
          InputsPerCall = 50
          PixelSizes = [] }

    /// A method defined on image pixels only (windows, blurred masks, spatial maps).
    let imagesOnly = { everywhere with Modalities = [ Modality.Image ] }

    /// A method on pixels one at a time (windows, superpixels), so also on tabular features (a feature a pixel).
    let pixelsOrFeatures = { everywhere with Modalities = [ Modality.Image; Modality.Tabular ] }

    /// A method that spends seconds on an input: called on 10 inputs at a time, so parts and progress come often.
    let slow (facts: MethodFacts) = { facts with InputsPerCall = 10 }

/// A method of the registry.
type MethodEntry =
    { /// The yaml name (`method: NAME`), doc and parameters.
      Variant: Variant<MethodKind>
      /// The family it belongs to (docs/methods.md groups by it): gradient, sampling, path, propagation, perturbation,
      /// bottleneck, layer, taylor, baseline, or the user's own.
      Family: string
      /// The facts of one parameter setting.
      Facts: MethodKind -> MethodFacts
      /// The engine's method of one parameter setting.
      Build: MethodContext -> MethodKind -> IAttributionMethod }

    member e.Name = e.Variant.Name

module MethodEntry =
    /// A shipped method whose parameters are a case of MethodKind (kept for the seeds of published runs: a method's
    /// noise seed is derived from F#'s layout of that case).
    let shipped (family: string) (variant: Variant<MethodKind>) (facts: MethodKind -> MethodFacts) (build: MethodContext -> MethodKind -> IAttributionMethod) =
        { Variant = variant; Family = family; Facts = facts; Build = build }

    /// The error of an entry asked about another entry's parameters: a bug in the registry, not a user's error.
    let mismatch (name: string) (kind: MethodKind) : 'a = invalidArg "kind" $"the entry '{name}' was given another method's parameters: %A{kind}"

    /// An entry for a method defined outside the library, whose parameters are a value of the caller's type 'p, read
    /// and written by `fields` (defaults and ranges as the shipped entries state theirs). Register it with
    /// MethodRegistry.register; YAML then takes `method: NAME` with those parameters.
    let custom (name: string) (doc: string) (family: string) (fields: Fields<'p, 'p>) (facts: 'p -> MethodFacts) (build: MethodContext -> 'p -> IAttributionMethod) =
        let wrap (p: 'p) = Registered { Entry = name; Parameters = box p }
        let unwrap (kind: MethodKind) =
            match kind with
            | Registered r when r.Entry = name -> Some(unbox<'p> r.Parameters)
            | _ -> None
        let parameters kind = match unwrap kind with Some p -> p | None -> mismatch name kind
        { Variant = Variant.make name doc fields wrap unwrap
          Family = family
          Facts = parameters >> facts
          Build = fun context kind -> build context (parameters kind) }
