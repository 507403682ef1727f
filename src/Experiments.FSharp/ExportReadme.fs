/// The README.md of an export: what it is, its files in one line each, and how to load and check it in Python with
/// nothing but `safetensors`, `numpy` and `json`.
module Experiments.ExportReadme

open System.Text
open Experiments.ExportManifest

let private python = """```python
import json
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

manifest = json.load(open("manifest.json"))
inputs = load_file("inputs.safetensors")          # test_index, label, prediction, logits, inputs, target_*
print(manifest["run"], inputs["test_index"][:5])

# Every per-input value against the reported value it summarises (metrics.json holds the same numbers).
for f in manifest["files"]:
    if f["format"] != "safetensors":
        continue
    tensors = load_file(f["path"])
    for t in f.get("tensors", []):
        assert list(tensors[t["name"]].shape) == t["shape"], (f["path"], t["name"])
        s = t.get("summarises")
        if s is None:
            continue
        v = tensors[t["name"]]
        reduced = v.mean() if s["reduction"] == "mean" else np.nanmean(v)
        reported = float(s["value"])
        assert abs(reduced - reported) <= 1e-9 * max(1.0, abs(reported)), (f["path"], t["name"], reduced, reported)

# Each map file: its noise seed (a plain integer) and its maps, which explain inputs["target_" + target].
for f in manifest["files"]:
    if f["path"].startswith("maps/"):
        with safe_open(f["path"], "np") as m:
            seed = int(m.metadata()["noise_seed"])
            maps = m.get_tensor("maps")
        target = inputs["target_" + f["metadata"]["target"]]

# Each class covariance shared across channels: its Cholesky factors reproduce it.
for f in manifest["files"]:
    if f["path"].startswith("covariance/") and f["metadata"]["structure"] == "shared_across_channels":
        c = load_file(f["path"])
        factor = c["factor"].astype(np.float64)
        covariance = c["covariance"].astype(np.float64)
        assert np.allclose(factor @ factor.transpose(0, 2, 1), covariance, rtol=0, atol=1e-5 * np.abs(covariance).max())
```"""

/// README.md's text for a manifest.
let render (m: Manifest) =
    let sb = StringBuilder()
    let line (s: string) = sb.AppendLine s |> ignore
    let fact name = m.Run |> List.tryPick (fun (k, v) -> if k = name then Some v else None) |> Option.map (function Text s -> s | Integer i -> string i | Number x -> string x | Texts l -> String.concat ", " l) |> Option.defaultValue "?"
    let name, folder, seed, device, commit = fact "name", fact "folder", fact "seed", fact "device", fact "commit"
    line $"# Export of the run `{name}`"
    line ""
    line $"Written by `attribution export` from the run folder `{folder}` (seed {seed}, run on {device}, commit {commit}), so that every number of the run can be checked outside .NET. `manifest.json` lists every file, the shape and dtype of every tensor, and one sentence on how its values were computed; per-input values name the reported value they reduce to (`summarises`: the value, where metrics.json holds it, and the reduction)."
    line ""
    let classes = String.concat ", " m.Classes
    line $"Inputs are in the run's explained order ({m.Explained} inputs): row i of every per-input tensor belongs to `inputs.safetensors`'s `test_index[i]` (the input's index in the dataset's test set), and a metric that looks at the first n inputs only has n rows. Classes: {classes}."
    line ""
    line "## Files"
    line ""
    for f in m.Files do line $"- `{f.Path}`: {f.Description}"
    if not m.WithoutPerInput.IsEmpty then
        line ""
        line "Metrics without per-input values (their reported values are in `metrics.json`):"
        line ""
        for w in m.WithoutPerInput do
            let methods = String.concat ", " w.Methods
            line $"- `{w.Metric}` ({methods}): {w.Why}"
    line ""
    line "## Loading it in Python"
    line ""
    line "safetensors files load with `safetensors.numpy.load_file` (a dict of NumPy arrays); their metadata (strings) with `safe_open(path, \"np\").metadata()`. Every file this toolkit writes also records the SHA-256 of its header and data in that metadata (`header_sha256`, `content_sha256`). JSON and CSV files load with `json` and `csv`. NaN in JSON is written as the string \"nan\"."
    line ""
    line python
    sb.ToString()
