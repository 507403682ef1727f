/// Small models with known structure, shared by the tests.
module TestModels

open TorchSharp
open TorchSharp.Modules
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions

/// A random smooth network on inputs [B, 1, 1, d]: tanh MLP with k output logits.
type TinyNet(d: int, hidden: int, classes: int) as this =
    inherit nn.Module<Tensor, Tensor>("tiny_net")
    let l1 = nn.Linear(int64 d, int64 hidden)
    let l2 = nn.Linear(int64 hidden, int64 classes)
    do this.RegisterComponents()
    override _.forward(x) =
        use scope = NewDisposeScope()
        l2.forward(torch.tanh(l1.forward(x.flatten(1)))).MoveToOuterDisposeScope()

/// Logits [a.x + b, 0] on inputs [B, 1, 1, d]: with b very negative, p_0 = sigmoid(a.x + b) ~ exp(a.x + b).
type ExponentialNet(a: float32[], b: float32) =
    inherit nn.Module<Tensor, Tensor>("exponential_net")
    let weights = tensor(a)
    override _.forward(x) =
        use scope = NewDisposeScope()
        let s = x.flatten(1).matmul(weights.``to``(x.device)) + b
        stack([| s; zeros_like(s) |], 1L).MoveToOuterDisposeScope()

/// Logits W x (no bias): the gradient of logit k is row k of W, everywhere.
type LinearNet(w: float32[,]) =
    inherit nn.Module<Tensor, Tensor>("linear_net")
    let weights = tensor(w)
    override _.forward(x) = x.flatten(1).matmul(weights.t())

/// Seeds TorchSharp's initialisation and builds a TinyNet in eval mode.
let tinyNet seed d hidden classes =
    torch.manual_seed(int64 seed) |> ignore
    let net = new TinyNet(d, hidden, classes)
    net.eval()
    net

/// U(0, 1) draws from a generator of the test's own (not the global one): a test's data do not depend on which tests
/// ran before it, nor on a filter that runs it alone.
let uniform (seed: int) (shape: int64[]) =
    use g = new Generator(uint64 seed, CPU)
    rand(shape, generator = g)

/// N(0, 1) draws from a generator of the test's own (see uniform).
let normal (seed: int) (shape: int64[]) =
    use g = new Generator(uint64 seed, CPU)
    randn(shape, generator = g)

/// A random symmetric positive-definite matrix A A^T / d + 0.1 I, [d, d] float64.
let randomCovariance (seed: int) (d: int) =
    use g = new Generator(uint64 seed, CPU)
    let a = randn([| int64 d; int64 d |], dtype = ScalarType.Float64, generator = g)
    a.matmul(a.t()) / float d + eye(int64 d, dtype = ScalarType.Float64) * 0.1

let toArray (t: Tensor) = t.cpu().``to``(ScalarType.Float64).data<float>().ToArray()

/// max |actual - reference| / max |reference|, computed in float64. Float32 rounding of a computation is of the order of
/// the magnitudes it handles, not of each result: an element near zero by cancellation (or a map whose scale is far from
/// 1) carries the rounding of its large terms, so an elementwise tolerance with a fixed absolute floor (allclose's atol)
/// is either too tight there or meaningless elsewhere.
let differenceOnScale (actual: Tensor) (reference: Tensor) =
    use scope = NewDisposeScope()
    let a = actual.detach().cpu().``to``(ScalarType.Float64)
    let b = reference.detach().cpu().``to``(ScalarType.Float64)
    let scale = max (b.abs().max().item<float>()) (a.abs().max().item<float>())
    let worst = (a - b).abs().max().item<float>()
    if worst = 0.0 then 0.0 else worst / scale

/// Expects max |actual - reference| <= tolerance * max |reference|: equal up to rounding at the scale of the compared values.
let expectCloseOnScale (tolerance: float) (actual: Tensor) (reference: Tensor) (what: string) =
    Expecto.Expect.sequenceEqual actual.shape reference.shape $"{what}: same shape"
    let d = differenceOnScale actual reference
    Expecto.Expect.isLessThanOrEqual d tolerance $"{what}: largest difference {d:E2} of the values' scale (allowed {tolerance:E0})"
