/// Published numbers our reports print next to ours, with the paper and table they come from.
module Experiments.PaperReference

open Experiments

/// Gat et al. (2022), Table 1, image row (CIFAR-10, their CNN): AUC of post-hoc accuracy explaining the
/// ground truth, explaining the prediction, and of post-hoc consistency.
let functionalInformationTable1Image =
    [ "SmoothGrad", (46.85, 46.64, 53.83)
      "SmoothGradSQ", (54.35, 51.24, 58.35)
      "VarGrad", (47.47, 47.14, 64.97)
      "FI (Ours)", (57.36, 54.48, 65.06) ]

/// Which paper row a method of ours corresponds to, if any.
let rowOf (kind: MethodKind) =
    match kind with
    | SmoothGrad { Sampler = IsotropicGaussian _ } -> Some "SmoothGrad"
    | SmoothGradSq { Sampler = IsotropicGaussian _ } -> Some "SmoothGradSQ"
    | VarGrad { Sampler = IsotropicGaussian _ } -> Some "VarGrad"
    | FunctionalInformation { Sampler = CovarianceGaussian _ } -> Some "FI (Ours)"
    | _ -> None
