/// The composed method (sampler x statistic) computes exactly what the named presets compute.
module CompositionTests

open System
open Expecto
open TorchSharp
open Experiments
open TestModels

let private noCovariances : Building.MethodContext = { Covariances = Collections.Generic.Dictionary<float, Attribution.Sampling.ClassCovariance>(); References = (fun _ -> failwith "no references in this test"); Model = tinyNet 0 1 1 1; Structured = (fun _ _ -> failwith "no structured covariances in this test") }

let private maps (kind: MethodKind) (model: torch.nn.Module<torch.Tensor, torch.Tensor>) (x: torch.Tensor) (t: torch.Tensor) =
    let m = Execute.methodOf kind noCovariances
    use e = m.Explain(model, x, t, Attribution.Methods.ExplainOptions(Seed = 5L))
    toArray e.Maps

[<Tests>]
let tests =
    testList "composition" [
        test "sampled_gradients with each statistic equals its named preset (same sampler, samples, seed)" {
            use scope = torch.NewDisposeScope()
            let model = tinyNet 8 5 6 3
            let x = torch.rand(3, 1, 1, 5)
            let t = torch.tensor([| 0L; 1L; 2L |])
            let sampling = { Samples = 12; Sampler = IsotropicGaussian 0.2 }
            for statistic, preset in [ Mean, SmoothGrad sampling; MeanSquare, SmoothGradSq sampling; Variance, VarGrad sampling; FisherRatio, FunctionalInformation sampling ] do
                Expect.sequenceEqual (maps (SampledGradients(sampling, statistic, false, 0.0)) model x t) (maps preset model x t) $"{statistic}"
        }

        test "times_input multiplies the statistic by the input" {
            use scope = torch.NewDisposeScope()
            let model = tinyNet 9 4 5 2
            let x = torch.rand(2, 1, 1, 4)
            let t = torch.tensor([| 0L; 1L |])
            let sampling = { Samples = 6; Sampler = IsotropicGaussian 0.1 }
            let plain = maps (SampledGradients(sampling, MeanAbsolute, false, 0.0)) model x t
            let times = maps (SampledGradients(sampling, MeanAbsolute, true, 0.0)) model x t
            let expected = Array.map2 (*) plain (toArray x)
            for a, b in Array.zip times expected do Expect.floatClose Accuracy.medium a b "statistic * x"
        }

        test "sampled_gradients reads from YAML with its defaults" {
            let yaml = "name: c\ndata: { dataset: fashion_mnist }\nmodel: { architecture: fashion_cnn }\nmethods:\n  - method: sampled_gradients\n    statistic: mean_absolute\n    times_input: true\n"
            match Yaml.parseText "c.yaml" yaml with
            | Ok spec -> Expect.equal spec.Methods.Head.Kind (SampledGradients({ Samples = 50; Sampler = IsotropicGaussian 0.15 }, MeanAbsolute, true, 0.0)) "decoded"
            | Error e -> failtest (SpecError.formatAll e)
        }
    ]

[<Tests>]
let compositionErrors =
    testList "composition errors" [
        test "the Fisher statistic with a non-Gaussian sampler is a located spec error, not a failure mid-run" {
            let yaml = "name: c\ndata: { dataset: fashion_mnist }\nmodel: { architecture: fashion_cnn }\nmethods:\n  - method: saliency\n  - method: functional_information\n    sampler: { kind: bernoulli_suppression, p: 0.7 }\n"
            match Yaml.parseText "c.yaml" yaml with
            | Error e -> failtest (SpecError.formatAll e)
            | Ok spec ->
                match SpecFiles.compositionErrors "c.yaml" yaml spec with
                | [ e ] ->
                    Expect.equal (e.Line, e.Path) (7, "methods[1].sampler") "located at the sampler"
                    Expect.stringContains (SpecError.format e) "isotropic_gaussian" "says what is allowed"
                | other -> failtest $"expected one error, got {other}"
        }

        test "feature_suppression and expected_gradients read from YAML with the papers' defaults" {
            let yaml = "name: c\ndata: { dataset: fashion_mnist }\nmodel: { architecture: fashion_cnn }\nmethods:\n  - method: feature_suppression\n  - method: expected_gradients\n"
            match Yaml.parseText "c.yaml" yaml with
            | Ok spec -> Expect.equal (spec.Methods |> List.map (fun m -> m.Kind)) [ FeatureSuppression(0.7, 50, false); ExpectedGradients(50, 100) ] "defaults"
            | Error e -> failtest (SpecError.formatAll e)
        }
    ]

[<Tests>]
let datasetErrors =
    testList "dataset errors" [
        test "effective_heat_ratio on a dataset without boxes is a located spec error" {
            let yaml = "name: c\ndata: { dataset: fashion_mnist }\nmodel: { architecture: fashion_cnn }\nmethods:\n  - method: saliency\nmetrics:\n  - metric: rank_agreement\n  - metric: effective_heat_ratio\n"
            match Yaml.parseText "c.yaml" yaml with
            | Error e -> failtest (SpecError.formatAll e)
            | Ok spec ->
                match SpecFiles.compositionErrors "c.yaml" yaml spec with
                | [ e ] -> Expect.equal (e.Line, e.Path) (8, "metrics[1].metric") "located at the metric"
                | other -> failtest $"expected one error, got {other}"
                match SpecFiles.compositionErrors "c.yaml" (yaml.Replace("fashion_mnist", "fashion_canvas")) { spec with Data = { spec.Data with Dataset = FashionCanvas } } with
                | [] -> ()
                | other -> failtest $"fashion_canvas has boxes, got {other}"
        }
    ]

/// Errors of a spec's YAML text, decoded then checked for composition.
let private errorsOf (yaml: string) =
    match Yaml.parseText "m.yaml" yaml with
    | Error e -> failtest (SpecError.formatAll e)
    | Ok spec -> SpecFiles.compositionErrors "m.yaml" yaml spec |> List.map (fun e -> e.Line, e.Path)

[<Tests>]
let modalityErrors =
    testList "modality errors" [
        test "an architecture of another modality than the dataset's is located at model.architecture" {
            let yaml = "name: c\ndata: { dataset: spam_assassin }\nmodel:\n  architecture: fashion_cnn\nmethods:\n  - method: saliency\n"
            Expect.equal (errorsOf yaml) [ 4, "model.architecture" ] "text data, image model"
            Expect.equal (errorsOf (yaml.Replace("fashion_cnn", "text_bilstm"))) [] "text data, text model"
            Expect.equal (errorsOf (yaml.Replace("spam_assassin", "speech_commands").Replace("fashion_cnn", "m5"))) [] "audio data, audio model"
        }

        test "pixel-only methods and metrics on text, rule-based methods on a model without ReLUs, two_word without speech" {
            let yaml =
                "name: c\ndata: { dataset: spam_assassin }\nmodel: { architecture: text_bilstm }\nmethods:\n  - method: saliency\n  - method: occlusion\n  - method: guided_backprop\nmetrics:\n  - metric: negative_perturbation\n  - metric: parameter_randomisation\n  - metric: two_word\n  - metric: insertion_deletion\n  - metric: sensitivity_n\n"
            Expect.equal (errorsOf yaml) [ 6, "methods[1].method"; 7, "methods[2].method"; 10, "metrics[1].metric"; 11, "metrics[2].metric" ] "every misfit, located (insertion/deletion and Sensitivity-N work on tokens)"
            // On M5 (audio, with ReLUs) guided backprop, two_word, insertion/deletion and Sensitivity-N (over 25 ms frames)
            // are fine; occlusion and randomisation are not.
            let audio = yaml.Replace("spam_assassin", "speech_commands").Replace("text_bilstm", "m5")
            Expect.equal (errorsOf audio) [ 6, "methods[1].method"; 10, "metrics[1].metric" ] "audio"
            let message = match Yaml.parseText "m.yaml" audio with Ok spec -> SpecFiles.compositionErrors "m.yaml" audio spec |> List.last |> SpecError.format | Error e -> SpecError.formatAll e
            Expect.stringContains message "not defined on audio inputs" "says why"
            Expect.stringContains message "two_word" "and lists the metrics that fit"
        }

        test "a covariance structure other than the shared one decodes with its rank on images and is refused on text" {
            let yaml = "name: c\ndata: { dataset: fashion_mnist }\nmodel: { architecture: fashion_cnn }\nmethods:\n  - method: functional_information\n    sampler: { kind: covariance_gaussian, structure: low_rank, rank: 8 }\n"
            match Yaml.parseText "m.yaml" yaml with
            | Ok spec ->
                match spec.Methods.Head.Kind with
                | FunctionalInformation { Sampler = CovarianceGaussian c } -> Expect.equal (c.Structure, c.Rank) (LowRank, 8) "decoded"
                | other -> failtest $"decoded as {other}"
            | Error e -> failtest (SpecError.formatAll e)
            Expect.equal (errorsOf yaml) [] "fine on images"
            let text = yaml.Replace("fashion_mnist", "spam_assassin").Replace("fashion_cnn", "text_bilstm")
            Expect.equal (errorsOf text) [ 6, "methods[0].sampler" ] "text shares one covariance across positions"
        }

        test "input_iba and information_bottleneck on text need a text stage, named in the error" {
          for methodName in [ "input_iba"; "information_bottleneck" ] do
            let yaml = $"name: c\ndata: {{ dataset: spam_assassin }}\nmodel: {{ architecture: text_bilstm }}\nmethods:\n  - method: {methodName}\n"
            Expect.equal (errorsOf yaml) [ 5, "methods[0].stage" ] "the image default conv2 is not a BiLSTM stage"
            match Yaml.parseText "m.yaml" yaml with
            | Ok spec -> Expect.stringContains (SpecFiles.compositionErrors "m.yaml" yaml spec |> List.head |> SpecError.format) "lstm" "the allowed stage is listed"
            | Error e -> failtest (SpecError.formatAll e)
            Expect.equal (errorsOf (yaml + "    stage: lstm\n")) [] "lstm is"
            Expect.equal (errorsOf (yaml.Replace("text_bilstm", "text_cnn") + "    stage: conv\n")) [] "conv is the CNN's"
            Expect.equal (errorsOf (yaml.Replace("text_bilstm", "text_transformer") + "    stage: lstm\n")) [ 6, "methods[0].stage" ] "lstm is not the transformer's"
        }

        test "a stage the architecture lacks and mip_in off fashion_cnn are located errors" {
            let yaml = "name: c\ndata: { dataset: fashion_mnist }\nmodel: { architecture: small_resnet }\nmethods:\n  - method: grad_cam\n    stage: conv2\n  - method: mip_in\n"
            Expect.equal (errorsOf yaml) [ 6, "methods[0].stage"; 7, "methods[1].method" ] "conv2 is fashion_cnn's; mip_in needs fashion_cnn"
            Expect.equal (errorsOf (yaml.Replace("small_resnet", "fashion_cnn"))) [] "both fine on fashion_cnn"
            Expect.equal (errorsOf (yaml.Replace("conv2", "stage3"))) [ 7, "methods[1].method" ] "stage3 is small_resnet's"
        }

        test "a file holds several specs separated by ---, each keeping the file's line numbers" {
            let one = "name: a\ndata: { dataset: fashion_mnist }\nmodel: { architecture: fashion_cnn }\nmethods: [ { method: saliency } ]\n"
            let text = one + "---\n# the second\n" + one.Replace("name: a", "name: b").Replace("fashion_cnn }", "fashion_cnnx }")
            let docs = SpecFiles.documents text
            Expect.equal docs.Length 2 "two documents"
            match Yaml.parseText "m.yaml" docs.[0] with
            | Ok spec -> Expect.equal spec.Name "a" "first"
            | Error e -> failtest (SpecError.formatAll e)
            match Yaml.parseText "m.yaml" docs.[1] with
            | Error [ e ] -> Expect.equal (e.Line, e.Path) (9, "model.architecture") "the typo's line in the file"
            | other -> failtest $"expected one error in the second spec, got {other}"
            Expect.equal (SpecFiles.documents one) [ one ] "no separator: one document"
        }
    ]

[<Tests>]
let paperComparison =
    testList "paper comparison" [
        test "sameOrder counts pairs ordered alike; a row without our number is in no pair" {
            let theirs = [ "a", 3.0; "b", 2.0; "c", 1.0 ]
            Expect.equal (PaperReference.sameOrder [ "a", 30.0; "b", 20.0; "c", 10.0 ] theirs) (3, 3) "the same order"
            Expect.equal (PaperReference.sameOrder [ "a", 10.0; "b", 20.0; "c", 30.0 ] theirs) (0, 3) "reversed"
            Expect.equal (PaperReference.sameOrder [ "a", nan; "b", 20.0; "c", 10.0 ] theirs) (1, 1) "NaN left out"
        }

        test "sameOrderResolved counts only pairs whose intervals separate, and of those the ones ordered as in the paper" {
            let theirs = [ "a", 1.0; "b", 3.0; "c", 2.0 ]
            let ours = [ "a", 1.5, Some(1.0, 2.0); "b", 2.0, Some(1.5, 2.5); "c", 3.5, Some(3.0, 4.0) ]
            // (a, b) overlap: not resolved; (a, c) resolved and ordered as the paper; (b, c) resolved, reversed
            Expect.equal (PaperReference.sameOrderResolved ours theirs) (1, 2, 3) "one of two resolved pairs agrees"
            let noIntervals = ours |> List.map (fun (k, v, _) -> k, v, None)
            Expect.equal (PaperReference.sameOrderResolved noIntervals theirs) (0, 0, 3) "without intervals nothing is resolved"
        }

        test "a group claim holds when every pair is resolved as claimed, fails when one is resolved the other way, and is unresolved otherwise" {
            let claim: PaperReference.GroupClaim =
                { Metric = "m"; Figure = "Fig. 1"; Scalar = "s"; Better = PaperReference.Higher; Ahead = [ "A1"; "A2" ]; Behind = [ "B" ] }
            let verdict ours = PaperReference.groupVerdict claim ours |> Option.defaultValue "none"
            let b = "B", 1.0, Some(0.9, 1.1)
            Expect.stringContains (verdict [ "A1", 2.0, Some(1.8, 2.2); "A2", 3.0, Some(2.5, 3.5); b ]) "holds: all 2 pairs resolved as claimed" "both above, apart"
            Expect.stringContains (verdict [ "A1", 2.0, Some(1.8, 2.2); "A2", 0.5, Some(0.4, 0.6); b ]) "does not hold: 1 of 2 pairs resolved the other way (A2 / B), 1 as claimed" "A2 below B, apart"
            Expect.stringContains (verdict [ "A1", 2.0, Some(1.8, 2.2); "A2", 1.05, Some(0.95, 1.15); b ]) "not resolved at this size: 1 of 2 pairs resolved as claimed" "A2 overlaps B"
            Expect.stringContains (verdict [ "A1", 2.0, None; "A2", 0.5, None; "B", 1.0, None ]) "1 of 2 pairs ordered as claimed on point values" "no intervals"
            Expect.equal (verdict [ "A1", 2.0, Some(1.8, 2.2); "A2", 3.0, Some(2.5, 3.5) ]) "none" "no method of the other group: no verdict"
            // lower is better: the same values read the other way
            let lower = { claim with Better = PaperReference.Lower }
            Expect.stringContains (PaperReference.groupVerdict lower [ "A1", 0.5, Some(0.4, 0.6); "A2", 0.2, Some(0.1, 0.3); b ] |> Option.defaultValue "none") "holds" "both below, apart"
            Expect.stringContains (PaperReference.groupVerdict lower [ "A1", 2.0, Some(1.8, 2.2); "A2", 0.2, Some(0.1, 0.3); b ] |> Option.defaultValue "none") "does not hold" "A1 above B, apart"
        }

        test "the two-word claim holds when both shares are resolved above 0.5, fails when one is resolved below, and is unresolved otherwise" {
            let v right cat = PaperReference.twoWordVerdict "fi" right cat
            Expect.stringContains (v (0.6, Some(0.55, 0.65)) (0.58, Some(0.53, 0.63))) "holds: both shares resolved above 0.5" "both above"
            Expect.stringContains (v (0.6, Some(0.55, 0.65)) (0.45, Some(0.41, 0.49))) "does not hold" "'cat' below"
            Expect.stringContains (v (0.6, Some(0.55, 0.65)) (0.52, Some(0.48, 0.56))) "not resolved at this size" "'cat' straddles 0.5"
            Expect.stringContains (v (0.6, None) (0.4, None)) "no intervals: 'right' above, 'cat' not above on point values" "point values only"
            Expect.stringContains (v (0.6, Some(0.55, 0.65)) (0.58, Some(0.53, 0.63))) "0.600 [0.550, 0.650]" "the share and its interval are shown"
        }

        test "claims follow the modality: IMDB's beside text runs, ImageNet's beside image runs, none of either beside audio" {
            let text = PaperReference.claims "sensitivity_n" Modality.Text |> String.concat " "
            let image = PaperReference.claims "sensitivity_n" Modality.Image |> String.concat " "
            Expect.stringContains text "IMDB" "the text claim"
            Expect.isFalse (text.Contains "ImageNet") "not the image one"
            Expect.stringContains image "ImageNet" "the image claim"
            Expect.stringContains (PaperReference.claims "insertion_deletion" Modality.Text |> String.concat " ") "Fig. 5b" "insertion/deletion on text"
            Expect.isEmpty (PaperReference.claims "sensitivity_n" Modality.Audio) "no paper claims Sensitivity-N on audio"
            Expect.isNonEmpty (PaperReference.claims "two_word" Modality.Audio) "the two-word claim is audio's"
            Expect.isTrue (PaperReference.claimMethods "sensitivity_n" (Lime(1000, 4, 1.0))) "LIME is one of the text comparisons' methods"
        }

        test "Sampling Matters verdicts follow the scores" {
            let fs p = FeatureSuppression(p, 50, false)
            let pointsOnly = List.map (fun (k, v) -> k, v, None)
            let peakAt07 = [ for p in [ 0.1; 0.3; 0.5; 0.7; 0.9 ] -> fs p, 1.0 - abs (p - 0.7) ]
            let baselines ig = [ Saliency true, 0.1; SmoothGrad { Samples = 50; Sampler = IsotropicGaussian 0.15 }, 0.2; IntegratedGradients(50, GaussLegendre), ig ]
            match PaperReference.samplingMattersVerdicts (pointsOnly (peakAt07 @ baselines 0.5)) with
            | [ best; above ] ->
                Expect.stringContains best "p = 0.7" "the best p"
                Expect.stringContains best "holds" "0.7 is in 0.6..0.8"
                Expect.stringContains above ": holds" "1.0 beats every baseline"
            | other -> failtest $"two verdicts expected, got {other}"
            match PaperReference.samplingMattersVerdicts (pointsOnly ([ for p in [ 0.1; 0.2; 0.7 ] -> fs p, 0.5 - p ] @ baselines 2.0)) with
            | [ best; _ ] -> Expect.stringContains best "does not hold" "0.1 beats 0.7, which is in 0.6..0.8"
            | other -> failtest $"two verdicts expected, got {other}"
            match PaperReference.samplingMattersVerdicts (pointsOnly ([ for p in [ 0.1; 0.2; 0.3 ] -> fs p, p ] @ baselines 2.0)) with
            | [ best; above ] ->
                Expect.stringContains best "cannot be checked" "no p in 0.6..0.8 was run"
                Expect.stringContains above "IG score higher" "IG beats it"
            | other -> failtest $"two verdicts expected, got {other}"
            // With intervals: a lead inside them is not a finding, a lead beyond them is.
            let within half = List.map (fun (k, v) -> k, v, Some(v - half, v + half))
            match PaperReference.samplingMattersVerdicts (within 0.05 (peakAt07 @ baselines 0.5)) with
            | [ best; above ] ->
                // 0.7 scores 1.0, 0.5 and 0.9 score 0.8: apart at half-width 0.05
                Expect.stringContains best "holds (resolved" best
                Expect.stringContains above "holds (resolved against each)" above
            | other -> failtest $"two verdicts expected, got {other}"
            match PaperReference.samplingMattersVerdicts (within 0.15 (peakAt07 @ baselines 0.5)) with
            | [ best; above ] ->
                Expect.stringContains best "holds on point values, not resolved" best
                Expect.stringContains above "holds (resolved against each)" "1.0 against 0.5 at most, apart even at half-width 0.15"
            | other -> failtest $"two verdicts expected, got {other}"
            match PaperReference.samplingMattersVerdicts (within 0.3 ([ for p in [ 0.1; 0.2; 0.3 ] -> fs p, p ] @ baselines 0.4)) with
            | [ best; above ] ->
                Expect.stringContains best "cannot be checked" "no p in 0.6..0.8 was run: nothing to compare with"
                Expect.stringContains above "IG score higher (not resolved)" above
            | other -> failtest $"two verdicts expected, got {other}"
        }
    ]
