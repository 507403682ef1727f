/// Published numbers our reports print next to ours, with the paper and table they come from, and which of our
/// methods stands for which paper row. The papers ran other data and networks: reports compare orderings.
module Experiments.PaperReference

open Experiments

/// Gat et al. (2022), Table 1: AUC of post-hoc accuracy explaining the ground truth, explaining the prediction,
/// and of post-hoc consistency, per modality (audio: Speech Commands with M5; image: CIFAR-10 with their CNN;
/// text: IMDB with a BiLSTM).
let functionalInformationTable1 (modality: string) =
    match modality with
    | "audio" ->
        [ "SmoothGrad", (37.55, 37.38, 47.22)
          "SmoothGradSQ", (34.11, 33.65, 39.40)
          "VarGrad", (39.95, 40.65, 49.19)
          "FI (Ours)", (51.70, 51.09, 76.28) ]
    | "text" ->
        [ "SmoothGrad", (62.45, 64.24, 73.89)
          "SmoothGradSQ", (64.19, 64.66, 76.26)
          "VarGrad", (66.30, 63.45, 71.88)
          "FI (Ours)", (65.72, 66.30, 79.36) ]
    | _ ->
        [ "SmoothGrad", (46.85, 46.64, 53.83)
          "SmoothGradSQ", (54.35, 51.24, 58.35)
          "VarGrad", (47.47, 47.14, 64.97)
          "FI (Ours)", (57.36, 54.48, 65.06) ]

/// What the FI paper's Table 1 ran on, per modality.
let functionalInformationSetting (modality: string) =
    match modality with
    | "audio" -> "audio row (Google Speech Commands with M5; ours is espeak-ng speech)"
    | "text" -> "text row (IMDB sentiment with a BiLSTM; ours is SpamAssassin)"
    | _ -> "image row (CIFAR-10 with its CNN, not Fashion-MNIST)"

/// Which FI Table 1 row a method of ours corresponds to, if any.
let rowOf (kind: MethodKind) =
    match kind with
    | SmoothGrad { Sampler = IsotropicGaussian _ } -> Some "SmoothGrad"
    | SmoothGradSq { Sampler = IsotropicGaussian _ } -> Some "SmoothGradSQ"
    | VarGrad { Sampler = IsotropicGaussian _ } -> Some "VarGrad"
    | FunctionalInformation { Sampler = CovarianceGaussian _ } -> Some "FI (Ours)"
    | _ -> None

/// Whether a larger value of a scalar is better.
type Better =
    | Higher
    | Lower

/// A published table of one scalar of one of our metrics: its rows and values, and which of our methods is which row.
type Table =
    { Metric: string
      Scalar: string
      Better: Better
      Source: string
      Rows: (string * float) list
      RowOf: MethodKind -> string option }

let private neflagRow (kind: MethodKind) =
    match kind with
    | IntegratedGradients _ | IntegratedGradientsAuto _ -> Some "IG"
    | SmoothGrad { Sampler = IsotropicGaussian _ } -> Some "SG"
    | GuidedIntegratedGradients _ -> Some "GIG"
    | ExpectedGradients _ -> Some "EG"
    | AdversarialGradientIntegration _ -> Some "AGI"
    | NegativeFluxAggregation(n, epsilon, _) when epsilon = 0.1 && (n = 1 || n = 10 || n = 20) -> Some $"NeFLAG-{n}"
    | _ -> None

let private neflagColumns = [ "IG"; "SG"; "GIG"; "EG"; "AGI"; "NeFLAG-1"; "NeFLAG-10"; "NeFLAG-20" ]

/// Li et al. (2023), Table 1, VGG19 (ImageNet): deletion and insertion scores; Difference = insertion - deletion.
let private neflagVgg19 =
    let deletion = [ 0.071; 0.065; 0.054; 0.041; 0.040; 0.034; 0.052; 0.059 ]
    let insertion = [ 0.223; 0.312; 0.304; 0.338; 0.401; 0.416; 0.521; 0.535 ]
    let source = "Li et al. 2023 (NeFLAG), Table 1, VGG19 on ImageNet"
    [ { Metric = "insertion_deletion"; Scalar = "deletion"; Better = Lower; Source = source; Rows = List.zip neflagColumns deletion; RowOf = neflagRow }
      { Metric = "insertion_deletion"; Scalar = "insertion"; Better = Higher; Source = source; Rows = List.zip neflagColumns insertion; RowOf = neflagRow }
      { Metric = "insertion_deletion"; Scalar = "difference"; Better = Higher; Source = source + " (insertion - deletion)"
        Rows = List.zip3 neflagColumns insertion deletion |> List.map (fun (k, i, d) -> k, i - d); RowOf = neflagRow } ]

/// Which InputIBA paper row a method of ours corresponds to, if any.
let inputIbaRow (kind: MethodKind) =
    match kind with
    | InputIba _ -> Some "InputIBA"
    | InformationBottleneck _ -> Some "IBA"
    | GradCam _ -> Some "GradCAM"
    | GuidedBackprop -> Some "Guided BP"
    | ExtremalPerturbation _ -> Some "Extremal Perturbation"
    | DeepShap _ -> Some "DeepSHAP"
    | IntegratedGradients _ | IntegratedGradientsAuto _ -> Some "Integrated Gradients"
    | _ -> None

/// Zhang et al. (2021), Table 2: EHR on 1,000 ImageNet images with boxes under a third of the image (VGG-16).
let private inputIbaEhr =
    { Metric = "effective_heat_ratio"; Scalar = "ehr"; Better = Higher; Source = "Zhang et al. 2021 (InputIBA), Table 2, VGG-16 on ImageNet"
      Rows = [ "InputIBA", 0.476; "IBA", 0.356; "GradCAM", 0.283; "Guided BP", 0.421; "Extremal Perturbation", 0.421; "DeepSHAP", 0.183; "Integrated Gradients", 0.155 ]
      RowOf = inputIbaRow }

/// Every published table a report can compare with.
let tables = neflagVgg19 @ [ inputIbaEhr ]

/// Methods of the InputIBA paper's comparisons (its claims concern these; LIME and random attribution are its text
/// baselines).
let private inputIbaMethod (kind: MethodKind) =
    match kind with
    | InputIba _ | InformationBottleneck _ | GradCam _ | GuidedBackprop | DeepShap _ | IntegratedGradients _ | IntegratedGradientsAuto _ | ExtremalPerturbation _
    | Lime _ | RandomMap -> true
    | _ -> false

/// Methods of Sampling Matters' comparisons.
let private samplingMattersMethod (kind: MethodKind) =
    match kind with
    | FeatureSuppression _ | Saliency _ | SmoothGrad _ | IntegratedGradients _ | IntegratedGradientsAuto _ -> true
    | _ -> false

/// Which methods a metric's claims are about: a report prints the claims when it has at least two of them.
let claimMethods (metric: string) : MethodKind -> bool =
    match metric with
    | "sensitivity_n" | "roar" | "parameter_randomisation" | "insertion_deletion" -> inputIbaMethod
    | "explanation_certainty" -> samplingMattersMethod
    | "two_word" -> (function FunctionalInformation _ | SmoothGrad _ | SmoothGradSq _ | VarGrad _ -> true | _ -> false)
    | "taylor_fidelity" -> (function IntegratedGradients _ | IntegratedGradientsAuto _ | GradientXInput | Occlusion _ | Taylor _ -> true | _ -> false)
    | _ -> fun _ -> false

/// A claim, made in a figure and words, that one group of methods scores better on a scalar than another group.
type GroupClaim =
    { Metric: string
      Figure: string
      Scalar: string
      Better: Better
      /// Paper rows (inputIbaRow) claimed to score better than every row of Behind.
      Ahead: string list
      Behind: string list }

/// The InputIBA paper's image claims that order groups of methods (see imageClaims for their words).
let groupClaims =
    [ { Metric = "sensitivity_n"; Figure = "Zhang et al. 2021, Fig. 4a"; Scalar = "mean_correlation"; Better = Higher
        Ahead = [ "InputIBA"; "IBA"; "GradCAM" ]; Behind = [ "DeepSHAP"; "Integrated Gradients" ] }
      { Metric = "insertion_deletion"; Figure = "Zhang et al. 2021, Fig. 5a"; Scalar = "difference"; Better = Higher
        Ahead = [ "InputIBA"; "IBA"; "Extremal Perturbation"; "GradCAM" ]; Behind = [ "DeepSHAP"; "Integrated Gradients" ] }
      { Metric = "roar"; Figure = "Zhang et al. 2021, Fig. 6"; Scalar = "mean_accuracy_removed"; Better = Lower
        Ahead = [ "InputIBA"; "IBA"; "Extremal Perturbation"; "GradCAM" ]; Behind = [ "Integrated Gradients"; "DeepSHAP"; "Guided BP" ] }
      { Metric = "parameter_randomisation"; Figure = "Adebayo et al. 2018 / Zhang et al. 2021, Fig. 3"; Scalar = "final_ssim"; Better = Lower
        Ahead = [ "InputIBA"; "IBA"; "GradCAM"; "Integrated Gradients" ]; Behind = [ "Guided BP" ] } ]

/// The verdict on a group claim from our rows (paper row, value, interval): every pair of an Ahead row and a Behind
/// row that we have is resolved as claimed (its intervals apart, in the claimed order), resolved the other way, or not
/// resolved (intervals overlap, or none). The claim holds when every pair is resolved as claimed, does not hold when
/// any pair is resolved the other way, and is not resolved otherwise. None when we have no pair.
let groupVerdict (claim: GroupClaim) (ours: (string * float * (float * float) option) list) =
    let find row = ours |> List.tryFind (fun (k, v, _) -> k = row && not (System.Double.IsNaN v))
    let pairs = [ for a in claim.Ahead do for b in claim.Behind do match find a, find b with Some x, Some y -> yield x, y | _ -> () ]
    if pairs.IsEmpty then None
    else
        // a claimed better than b, by the intervals: a's whole interval on the better side of b's
        let apart (_, _, ia) (_, _, ib) =
            match ia, ib, claim.Better with
            | Some(_, highA), Some(lowB, _), Lower -> highA < lowB
            | Some(lowA, _), Some(_, highB), Higher -> lowA > highB
            | _ -> false
        let pairName ((a, _, _), (b, _, _)) = $"{a} / {b}"
        let asClaimed = pairs |> List.filter (fun (a, b) -> apart a b)
        let against = pairs |> List.filter (fun (a, b) -> apart b a)
        let pointsAsClaimed = pairs |> List.filter (fun ((_, va, _), (_, vb, _)) -> match claim.Better with Higher -> va > vb | Lower -> va < vb)
        let withIntervals = ours |> List.exists (fun (_, _, i) -> i.IsSome)
        let direction = match claim.Better with Higher -> "higher" | Lower -> "lower"
        let listed rows = rows |> String.concat ", "
        let verdict =
            if not withIntervals then $"{pointsAsClaimed.Length} of {pairs.Length} pairs ordered as claimed on point values (no intervals: nothing resolved)"
            elif not against.IsEmpty then
                $"does not hold: {against.Length} of {pairs.Length} pairs resolved the other way ({against |> List.map pairName |> listed}), {asClaimed.Length} as claimed"
            elif asClaimed.Length = pairs.Length then $"holds: all {pairs.Length} pairs resolved as claimed"
            else $"not resolved at this size: {asClaimed.Length} of {pairs.Length} pairs resolved as claimed, none the other way, {pairs.Length - asClaimed.Length} with overlapping intervals"
        Some $"Verdict ({claim.Figure}, `{claim.Scalar}` {direction} for {listed claim.Ahead} than for {listed claim.Behind}; the pairs we ran): {verdict}."

/// The verdict on the two-word claim (Gat et al. 2022, Fig. 2: FI's map of 'right' lies on the first word, of 'cat' on
/// the second) for one FI method: each share (value, interval) resolved above 0.5 (no preference), resolved below it,
/// or not resolved; the claim holds when both are resolved above.
type private ShareSide =
    | Above
    | Below
    | Unresolved
    /// no interval: only whether the point value is above 0.5
    | PointValue of above: bool

let twoWordVerdict (methodId: string) (right: float * (float * float) option) (cat: float * (float * float) option) =
    let fmt (v: float) = v.ToString("0.000", System.Globalization.CultureInfo.InvariantCulture)
    let side (value: float, interval) =
        match interval with
        | Some(low, _) when low > 0.5 -> Above
        | Some(_, high) when high < 0.5 -> Below
        | Some _ -> Unresolved
        | None -> PointValue(value > 0.5)
    let shown (value, interval) =
        match interval with
        | Some(low, high) -> $"{fmt value} [{fmt low}, {fmt high}]"
        | None -> fmt value
    let words = function Above | PointValue true -> "above" | Below -> "below" | Unresolved -> "unresolved" | PointValue false -> "not above"
    let verdict =
        match side right, side cat with
        | Above, Above -> "holds: both shares resolved above 0.5"
        | Below, _ | _, Below -> "does not hold: a share is resolved below 0.5"
        | (PointValue _ as a), b | a, (PointValue _ as b) -> $"no intervals: 'right' {words a}, 'cat' {words b} on point values"
        | _ -> "not resolved at this size: a share's interval contains 0.5"
    $"Verdict (Gat et al. 2022, Fig. 2) for `{methodId}`: 'right' on the first word {shown right}, 'cat' on the second {shown cat}: {verdict}."

/// Claims the papers make in words or figures only (no table), per metric, for images (and the audio two-word test).
let private imageClaims (metric: string) =
    match metric with
    | "sensitivity_n" -> [ "Zhang et al. 2021, Fig. 4a (ImageNet): InputIBA, IBA and GradCAM score high; DeepSHAP and Integrated Gradients relatively low." ]
    | "roar" -> [ "Zhang et al. 2021, Fig. 6: Integrated Gradients, DeepSHAP and Guided Backprop do not identify contributing features (accuracy barely drops); InputIBA, IBA, Extremal Perturbations and GradCAM do, the last two slightly better." ]
    | "parameter_randomisation" -> [ "Adebayo et al. 2018 / Zhang et al. 2021, Fig. 3: Guided Backprop stays similar to the original map as layers are randomised (fails the check); InputIBA, IBA, GradCAM and IG change." ]
    | "insertion_deletion" -> [ "Zhang et al. 2021, Fig. 5a: InputIBA, IBA, Extremal Perturbations and GradCAM reveal important features; DeepSHAP and Integrated Gradients do not." ]
    | "explanation_certainty" -> [ "Luo et al. (Sampling Matters): feature suppression (Bernoulli dropping, p in 0.6..0.8) gives higher explanation certainty than Gaussian-noise sampling (SmoothGrad) and than plain gradients or IG." ]
    | "two_word" -> [ "Gat et al. 2022, Fig. 2: FI's map for 'right' concentrates on the first word and for 'cat' on the second (qualitative)." ]
    | "taylor_fidelity" -> [ "Deng et al. 2020: IG satisfies all three properties for the terms it can represent; Gradient x Input and Occlusion-1 misassign the high-order terms (Occlusion-1 gives every interaction fully to each of its features)." ]
    | _ -> []

/// The claims beside a metric's numbers on a modality: the InputIBA paper's IMDB claims on text; the image papers'
/// claims only beside image runs (the Taylor framework's are about any input).
let claims (metric: string) (modality: Modality) =
    match metric, modality with
    | "sensitivity_n", Modality.Text -> [ "Zhang et al. 2021, Fig. 4b (IMDB, 4-layer LSTM, a percentage of the words perturbed): LIME and InputIBA identify the important words; InputIBA correlates higher than the others at 50% of the words." ]
    | "insertion_deletion", Modality.Text -> [ "Zhang et al. 2021, Fig. 5b (IMDB): InputIBA reveals the important words; Table 1: IBA, inserted at a hidden layer of the LSTM, gives high attribution to every word." ]
    | ("sensitivity_n" | "insertion_deletion" | "roar" | "parameter_randomisation" | "explanation_certainty"), (Modality.Text | Modality.Audio) -> []
    | _ -> imageClaims metric

/// Pairs of rows ordered the same way by two score lists, and the number of comparable pairs. A row without a number
/// on our side (NaN: e.g. a ground-truth column when only predictions were explained) is in no pair.
let sameOrder (ours: (string * float) list) (theirs: (string * float) list) =
    let common = ours |> List.filter (fun (k, v) -> not (System.Double.IsNaN v) && theirs |> List.exists (fun (k2, _) -> k2 = k))
    let get l k = l |> List.find (fun (k2, _) -> k2 = k) |> snd
    let pairs = [ for (a, _) in common do for (b, _) in common do if a < b then yield a, b ]
    let agree = pairs |> List.filter (fun (a, b) -> sign (get ours a - get ours b) = sign (get theirs a - get theirs b)) |> List.length
    agree, pairs.Length

/// Pairs ordered as in the paper, counting only the pairs our intervals resolve: two methods whose bootstrap intervals
/// overlap are not ordered at this size, whatever their point values. (resolved pairs ordered as in the paper,
/// resolved pairs, all pairs in common.)
let sameOrderResolved (ours: (string * float * (float * float) option) list) (theirs: (string * float) list) =
    let common = ours |> List.filter (fun (k, v, _) -> not (System.Double.IsNaN v) && theirs |> List.exists (fun (k2, _) -> k2 = k))
    let value k = common |> List.pick (fun (k2, v, _) -> if k2 = k then Some v else None)
    let interval k = common |> List.pick (fun (k2, _, i) -> if k2 = k then Some i else None)
    let paper k = theirs |> List.find (fun (k2, _) -> k2 = k) |> snd
    let separate a b =
        match interval a, interval b with
        | Some(lowA, highA), Some(lowB, highB) -> highA < lowB || highB < lowA
        | _ -> false
    let pairs = [ for (a, _, _) in common do for (b, _, _) in common do if a < b then yield a, b ]
    let resolved = pairs |> List.filter (fun (a, b) -> separate a b)
    let agree = resolved |> List.filter (fun (a, b) -> sign (value a - value b) = sign (paper a - paper b)) |> List.length
    agree, resolved.Length, pairs.Length

/// Luo et al. (Sampling Matters) give their certainty results as figures only (Fig. 4b: mutual information over
/// p, highest for p in 0.6..0.8; Fig. 5: feature suppression above SmoothGrad, IG and the plain gradient on every
/// ImageNet model, normalised to IG). Our verdict on each claim from the methods' `mutual_information_nats` (value and,
/// where the results have one, interval): a verdict the intervals do not settle says "not resolved" beside the point
/// values' answer, so a lead of 0.001 nats is never reported as a finding.
let samplingMattersVerdicts (scored: (MethodKind * float * (float * float) option) list) =
    let fmt (v: float) = v.ToString("0.000", System.Globalization.CultureInfo.InvariantCulture)
    let withIntervals = scored |> List.forall (fun (_, _, i) -> i.IsSome)
    // (value, interval) a above b, and their intervals apart
    let separatedAbove (a: float, ia: (float * float) option) (b: float, ib: (float * float) option) =
        match ia, ib with
        | Some(lowA, _), Some(_, highB) -> a > b && lowA > highB
        | _ -> false
    let suppression =
        scored |> List.choose (function FeatureSuppression(p, _, false), v, i -> Some(p, (v, i)) | _ -> None)
        |> List.distinctBy fst |> List.sortBy fst
    let baseline name pick = scored |> List.tryPick (fun (k, v, i) -> if pick k then Some(name, (v, i)) else None)
    let baselines =
        [ baseline "the gradient" (function Saliency _ -> true | _ -> false)
          baseline "SmoothGrad" (function SmoothGrad { Sampler = IsotropicGaussian _ } -> true | _ -> false)
          baseline "IG" (function IntegratedGradients _ | IntegratedGradientsAuto _ -> true | _ -> false) ] |> List.choose id
    let names (xs: (string * 'a) list) = xs |> List.map fst |> String.concat " and "
    [ if suppression.Length >= 3 then
          let bestP, best = suppression |> List.maxBy (snd >> fst)
          let inRange p = p >= 0.6 - 1e-9 && p <= 0.8 + 1e-9
          let inside, outside = suppression |> List.partition (fst >> inRange)
          // the best p against every p on the claim's other side
          let others = if inRange bestP then outside else inside
          let settled = others |> List.forall (fun (_, o) -> separatedAbove best o)
          let verdict =
              match inRange bestP, withIntervals && not others.IsEmpty, settled with
              | false, _, _ when inside.IsEmpty -> "cannot be checked: no p in 0.6..0.8 was run"
              | true, false, _ -> "holds"
              | true, true, true -> "holds (resolved: its interval lies above those of every p outside 0.6..0.8)"
              | true, true, false -> "holds on point values, not resolved (its interval overlaps that of a p outside 0.6..0.8)"
              | false, false, _ -> "does not hold"
              | false, true, true -> "does not hold (resolved: its interval lies above those of every p in 0.6..0.8)"
              | false, true, false -> "does not hold on point values, not resolved (its interval overlaps that of a p in 0.6..0.8)"
          yield $"""Verdict (Fig. 4b, mutual information highest for p in 0.6..0.8): highest here at p = {bestP} ({fmt (fst best)} nats) of {suppression.Length} values of p: {verdict}."""
      if not suppression.IsEmpty && not baselines.IsEmpty then
          let bestP, best = suppression |> List.maxBy (snd >> fst)
          let beaten = baselines |> List.filter (fun (_, (v, _)) -> v >= fst best)
          let listed = baselines |> List.map (fun (n, (v, _)) -> $"{n} {fmt v}") |> String.concat ", "
          let verdict =
              if beaten.IsEmpty then
                  let unresolved = baselines |> List.filter (fun (_, b) -> not (separatedAbove best b))
                  if not withIntervals then "holds"
                  elif unresolved.IsEmpty then "holds (resolved against each)"
                  else $"holds on point values; not resolved against {names unresolved}"
              else
                  let resolved = beaten |> List.filter (fun (_, b) -> separatedAbove b best)
                  let settledness = if not withIntervals then "" elif resolved.Length = beaten.Length then " (resolved)" else " (not resolved)"
                  $"does not hold: {names beaten} score higher{settledness}"
          yield $"Verdict (Fig. 5, feature suppression above the baselines): feature suppression at p = {bestP} {fmt (fst best)} nats against {listed}: {verdict}." ]
