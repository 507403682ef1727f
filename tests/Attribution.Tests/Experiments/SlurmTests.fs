/// `attribution slurm` on a real single-node Slurm cluster (scripts/slurm/cluster.sh): a spec submitted as a prepare
/// job, 4 shards and an assembling job gives the maps and metrics of one process byte for byte, also when a shard is
/// cancelled mid-way and requeued. Skipped, with the reason, where the cluster cannot start (not root, no Slurm).
module SlurmTests

open System
open System.Diagnostics
open System.IO
open System.Threading
open Expecto
open Experiments

let private repoRoot, cli, dotnetHost, run = TestProcesses.repoRoot, TestProcesses.cli, TestProcesses.dotnetHost, TestProcesses.run

/// The spec: saliency, SmoothGrad and FI with the class covariance on 200 inputs (4 calls of 50 a step), both targets;
/// insertion/deletion is a metric that shards share out, so the chain has a maps job and a second wave of shards.
let private specText (name: string) =
    String.concat "\n"
        [ $"name: {name}"
          "seed: 13"
          "device: cpu"
          "data: { dataset: fashion_mnist, explain: 200, train_limit: 2000 }"
          "model: { architecture: fashion_cnn, epochs: 1 }"
          "explain: { targets: [ground_truth, predicted], output: probability, batch_size: 64 }"
          "methods:"
          "  - method: saliency"
          "  - method: smooth_grad"
          "    samples: 16"
          "  - id: fi_sigma"
          "    method: functional_information"
          "    samples: 8"
          "    sampler: { kind: covariance_gaussian, scale: 0.15, covariance: class }"
          "metrics:"
          "  - metric: negative_perturbation"
          "  - metric: rank_agreement"
          "  - metric: insertion_deletion"
          "    pixels_per_step: 392"
          "" ]

/// The tensors of every attribution artefact in a cache, by file and tensor name, as bytes.
let private attributions (cache: string) =
    [ for file in Directory.GetFiles(Path.Combine(cache, "attributions"), "*.safetensors") |> Array.sort do
        for KeyValue(name, t) in Attribution.Models.Safetensors.Load file |> Seq.sortBy (fun kv -> kv.Key) do
            yield $"{Path.GetFileName file}/{name}", t.contiguous().bytes.ToArray() ]

/// Waits until Slurm lists none of the jobs; fails past the limit.
let private waitFor (slurm: (string * string) list) (jobs: string list) (limit: TimeSpan) =
    let clock = Stopwatch.StartNew()
    let pending () =
        let _, out, _ = run repoRoot slurm "squeue" [ "-h"; "-o"; "%i %T %r"; "-j"; String.Join(",", jobs) ]
        out.Split('\n', StringSplitOptions.RemoveEmptyEntries) |> Array.toList
    let mutable left = pending ()
    while not left.IsEmpty do
        if clock.Elapsed > limit then failtest $"Slurm jobs still queued after {limit}: {left}"
        if left |> List.exists (fun l -> l.Contains "DependencyNeverSatisfied") then failtest $"a job's dependency failed: {left}"
        Thread.Sleep 1000
        left <- pending ()

/// Submits `name`'s spec with `attribution slurm --submit --shards 4` from its own folder and cache; returns the
/// folder, the cache and the job ids (prepare, shards, maps, metric_shards, assemble).
let private submit (root: string) (slurm: (string * string) list) (name: string) =
    let folder = Path.Combine(root, name)
    Directory.CreateDirectory folder |> ignore
    File.WriteAllText(Path.Combine(folder, "spec.yaml"), specText "sharded")
    let cache = Path.Combine(folder, "cache")
    let code, out, err = run folder (slurm @ [ "ATTRIBUTION_CACHE", cache; "ATTRIBUTION_PROGRESS_INTERVAL", "0" ]) dotnetHost [ "exec"; cli; "slurm"; "spec.yaml"; "--shards"; "4"; "--submit" ]
    Expect.equal code 0 $"attribution slurm --submit: {out}\n{err}"
    let id (job: string) =
        out.Split('\n') |> Array.tryPick (fun l -> if l.StartsWith(job + " ") then Some(l.Substring(job.Length + 1).Trim()) else None)
        |> Option.defaultWith (fun () -> failtest $"no {job} job id in: {out}")
    folder, cache, (id "prepare", id "shards", id "maps", id "metric_shards", id "assemble")

let private compare (reference: string * string) (folder: string, cache: string) =
    let referenceFolder, referenceCache = reference
    let a, b = attributions referenceCache, attributions cache
    Expect.equal (b |> List.map fst) (a |> List.map fst) "the same attribution artefacts"
    for (name, x), (_, y) in List.zip a b do Expect.isTrue (x = y) $"{name}: identical bytes"
    for file in [ "metrics.csv"; "inputs.csv"; "certificates.csv" ] do
        let text (f: string) = File.ReadAllText(Path.Combine(f, "runs", "sharded", "latest", file))
        Expect.equal (text folder) (text referenceFolder) $"{file} identical"

/// The scripts of a request, by file name.
let private scriptsOf (shards: int) (cpus: int) (metricWave: bool) =
    let request =
        { SlurmScripts.Shards = shards; SlurmScripts.Partition = Some "gpu"; SlurmScripts.Time = Some "01:00:00"; SlurmScripts.GpusPerTask = Some 1
          SlurmScripts.CpusPerTask = cpus; SlurmScripts.Memory = None; SlurmScripts.Extra = [ "#SBATCH --account=lab" ]; SlurmScripts.MetricWave = metricWave }
    let setting =
        { SlurmScripts.Program = "'/opt/attribution'"; SlurmScripts.WorkingFolder = "/home/me/project"; SlurmScripts.Cache = "/shared/cache"
          SlurmScripts.SpecFile = "/home/me/project/slurm/x/spec.yaml"; SlurmScripts.SpecName = "x"; SlurmScripts.Folder = "/home/me/project/slurm/x" }
    SlurmScripts.scripts request setting |> dict

[<Tests>]
let tests =
    testSequenced <| testList "slurm" [
        test "the scripts: an array of N shards after the prepare job, the assembling job after every shard, every job on the same threads and cache" {
            let scripts = scriptsOf 7 3 false
            let shards = scripts.["shards.sbatch"]
            Expect.stringContains shards "#SBATCH --array=0-6" "7 tasks"
            Expect.stringContains shards "--shard \"$SLURM_ARRAY_TASK_ID/7\"" "each task its shard"
            for name in [ "prepare.sbatch"; "shards.sbatch"; "assemble.sbatch" ] do
                let text = scripts.[name]
                for line in [ "export ATTRIBUTION_THREADS=3"; "#SBATCH --cpus-per-task=3"; "export ATTRIBUTION_CACHE='/shared/cache'"; "#SBATCH --partition=gpu"
                              "#SBATCH --time=01:00:00"; "#SBATCH --gpus-per-task=1"; "#SBATCH --account=lab"; "cd '/home/me/project'" ] do
                    Expect.stringContains text line $"{name}: {line}"
            Expect.stringContains scripts.["prepare.sbatch"] "run '/home/me/project/slurm/x/spec.yaml' --only 'x' --prepare" "the prepare job"
            Expect.isFalse (scripts.["assemble.sbatch"].Contains "--shard" || scripts.["assemble.sbatch"].Contains "--prepare") "the assembling job is a plain run"
            let submit = scripts.["submit.sh"]
            Expect.stringContains submit "--dependency=afterok:\"${prepare%%;*}\" \"$here/shards.sbatch\"" "shards after prepare"
            Expect.stringContains submit "--dependency=afterok:\"${shards%%;*}\" \"$here/assemble.sbatch\"" "assemble after the array"
            Expect.stringContains scripts.["resume.sh"] "seq -s : -f \"${array}_%g\" 0 6" "resume waits for all 7 tasks"
            Expect.isFalse (scripts.ContainsKey "maps.sbatch") "no maps job without a metric that shards share out"
        }

        test "the scripts of a spec with metrics that shards share out: the maps job after the shards, the same shards again after it, the assembling job last; both waves resumable; valid bash" {
            let scripts = scriptsOf 5 2 true
            Expect.stringContains scripts.["maps.sbatch"] "run '/home/me/project/slurm/x/spec.yaml' --only 'x' --maps" "the maps job"
            let submit = scripts.["submit.sh"]
            Expect.stringContains submit "maps=$(sbatch --parsable --dependency=afterok:\"${shards%%;*}\" \"$here/maps.sbatch\")" "maps after the first wave"
            Expect.stringContains submit "metric_shards=$(sbatch --parsable --dependency=afterok:\"${maps%%;*}\" \"$here/shards.sbatch\")" "the same shards after the maps job"
            Expect.stringContains submit "assemble=$(sbatch --parsable --dependency=afterok:\"${metric_shards%%;*}\" \"$here/assemble.sbatch\")" "assemble after the second wave"
            let resume = scripts.["resume.sh"]
            Expect.stringContains resume "array=$SHARDS; next=$MAPS" "a first-wave task: the maps job waits for it"
            Expect.stringContains resume "array=$METRIC_SHARDS; next=$ASSEMBLE" "a second-wave task (--metrics): the assembling job waits for it"
            let folder = TestFiles.freshDir "slurm-scripts-syntax"
            for name in [ "submit.sh"; "resume.sh" ] do
                let file = Path.Combine(folder, name)
                File.WriteAllText(file, scripts.[name])
                let code, out, err = run folder [] "bash" [ "-n"; file ]
                Expect.equal code 0 $"bash -n {name}: {out}{err}"
            // jobs.env as submit.sh writes it, read back by resume.sh's `source`
            let printf = submit.Split('\n') |> Array.find (fun l -> l.StartsWith "printf ")
            let code, out, err = run folder [] "bash" [ "-c"; "prepare=1; shards=2; maps=3; metric_shards='4;c'; assemble=5; here=.; " + printf + "; source jobs.env; echo $PREPARE $SHARDS $MAPS $METRIC_SHARDS $ASSEMBLE" ]
            Expect.equal (code, out.Trim()) (0, "1 2 3 4 5") $"jobs.env: {err}"
        }

        test "slurm with --shards 0 or --cpus-per-task 0 is an error naming the option, before any file is written" {
            if (SlurmScripts.onPath "sbatch").IsNone then skiptest "sbatch is not installed (the check for it comes first)"
            let folder = TestFiles.freshDir "slurm-bad-numbers"
            File.WriteAllText(Path.Combine(folder, "spec.yaml"), specText "x")
            let code, out, err = run folder [] dotnetHost [ "exec"; cli; "slurm"; "spec.yaml"; "--shards"; "0"; "--cpus-per-task"; "0" ]
            Expect.equal code 1 $"exit code: {out}\n{err}"
            Expect.stringContains err "--shards 0: must be between 1" "the shard count"
            Expect.stringContains err "--cpus-per-task 0: must be between 1" "the cores"
            Expect.isFalse (Directory.Exists(Path.Combine(folder, "slurm"))) "nothing written"
        }

        test "slurm on a machine without sbatch is an error before any file is written" {
            let folder = TestFiles.freshDir "slurm-no-sbatch"
            File.WriteAllText(Path.Combine(folder, "spec.yaml"), specText "x")
            let code, out, err = run folder [ "PATH", "/nonexistent" ] dotnetHost [ "exec"; cli; "slurm"; "spec.yaml"; "--shards"; "4" ]
            Expect.equal code 1 $"exit code: {out}\n{err}"
            Expect.stringContains err "sbatch is not on PATH" "says why"
            Expect.isFalse (Directory.Exists(Path.Combine(folder, "slurm"))) "nothing written"
        }

        test "a spec submitted through attribution slurm (prepare, 4 shards, maps, 4 shards, assemble) gives one process's numbers; so does one whose shard was cancelled mid-way and requeued" {
            let state = Path.Combine(Path.GetTempPath(), $"attribution-slurm-{Guid.NewGuid():N}")
            let code, out, err = run repoRoot [] "bash" [ Path.Combine(repoRoot, "scripts", "slurm", "cluster.sh"); "start"; state ]
            if code <> 0 then skiptest $"no Slurm cluster here: {(out + err).Trim()}"
            let slurm = [ "SLURM_CONF", Path.Combine(state, "slurm.conf") ]
            try
                let root = Path.Combine(state, "work")
                // one process, on the shards' one thread (libtorch's sums depend on the thread count)
                let single = Path.Combine(root, "single")
                Directory.CreateDirectory single |> ignore
                File.WriteAllText(Path.Combine(single, "spec.yaml"), specText "sharded")
                let singleCache = Path.Combine(single, "cache")
                let clock = Stopwatch.StartNew()
                let code, out, err = run single [ "ATTRIBUTION_CACHE", singleCache ] dotnetHost [ "exec"; cli; "run"; "spec.yaml"; "--threads"; "1" ]
                Expect.equal code 0 $"the single-process run: {out}\n{err}"
                let singleSeconds = clock.Elapsed.TotalSeconds
                // the chain, undisturbed
                clock.Restart()
                let folder, cache, (prepare, shards, maps, metricShards, assemble) = submit root slurm "chain"
                waitFor slurm [ prepare; shards; maps; metricShards; assemble ] (TimeSpan.FromMinutes 8.0)
                let chainSeconds = clock.Elapsed.TotalSeconds
                Expect.isTrue (File.Exists(Path.Combine(folder, "runs", "sharded", "latest", "report.md"))) "the assembling job wrote the report"
                compare (single, singleCache) (folder, cache)
                // the second wave computed the metrics' 12 blocks of 200 inputs (3 methods: negative perturbation's two
                // classes, insertion/deletion's black and blurred rounds), dealt to the 4 tasks by inputs: 3 each
                let secondWaveLogs = [ for task in 0 .. 3 -> File.ReadAllText(Path.Combine(folder, "slurm", "sharded", "logs", $"shard-{metricShards}_{task}.out")) ]
                let blocks = secondWaveLogs |> List.map (fun log -> Text.RegularExpressions.Regex.Matches(log, "block of inputs").Count)
                Expect.equal blocks [ 3; 3; 3; 3 ] $"the second wave's blocks by task"
                // the assembling run recorded its numbers: one run, a row per line of its metrics.csv
                let recorded = ResultsStore.runs (Path.Combine(folder, "runs")) None
                Expect.equal recorded.Length 1 "one run recorded"
                let csvLines = File.ReadAllLines(Path.Combine(folder, "runs", "sharded", "latest", "metrics.csv")).Length - 1
                Expect.equal (ResultsStore.rowsOf (Path.Combine(folder, "runs")) recorded.Head.RunId).Length csvLines "every number"
                // the chain again; shard 1 is cancelled once it has started its calls, then requeued with resume.sh
                let folder, cache, (prepare, shards, maps, metricShards, assemble) = submit root slurm "cancelled"
                let log = Path.Combine(folder, "slurm", "sharded", "logs", $"shard-{shards}_1.out")
                let started = Stopwatch.StartNew()
                while not (File.Exists log && File.ReadAllText(log).Contains "inputs of this shard") do
                    if started.Elapsed > TimeSpan.FromMinutes 5.0 then failtest "shard 1 did not start in 5 minutes"
                    Thread.Sleep 100
                let _, _, _ = run root slurm "scancel" [ $"{shards}_1" ]
                let stateOf () = let _, out, _ = run root slurm "scontrol" [ "show"; "job"; $"{shards}_1" ] in out
                let cancelled = Stopwatch.StartNew()
                while not ((stateOf ()).Contains "JobState=CANCELLED") do
                    if cancelled.Elapsed > TimeSpan.FromSeconds 30.0 then failtest $"shard 1 not cancelled: {stateOf ()}"
                    Thread.Sleep 200
                let code, out, err = run root slurm "bash" [ Path.Combine(folder, "slurm", "sharded", "resume.sh"); "1" ]
                Expect.equal code 0 $"resume.sh: {out}\n{err}"
                waitFor slurm [ prepare; shards; maps; metricShards; assemble ] (TimeSpan.FromMinutes 8.0)
                // the requeued task's log (Slurm starts it anew): it found the calls stored before the cancel and computed the rest
                let counts = Text.RegularExpressions.Regex.Match(File.ReadAllText log, @"shard 1/4 done \((\d+) calls computed, (\d+) found stored\)")
                Expect.isTrue counts.Success $"the requeued shard finished: {File.ReadAllText log}"
                Expect.isTrue (int counts.Groups.[1].Value >= 1 && int counts.Groups.[2].Value >= 1) $"cancelled mid-way: {counts.Value}"
                compare (single, singleCache) (folder, cache)
                printfn "slurm: single process %.0f s, prepare + 4 shards + maps + 4 shards + assemble %.0f s" singleSeconds chainSeconds
            finally
                run repoRoot [] "bash" [ Path.Combine(repoRoot, "scripts", "slurm", "cluster.sh"); "stop"; state ] |> ignore
                try Directory.Delete(state, true) with _ -> ()
        }
    ]
