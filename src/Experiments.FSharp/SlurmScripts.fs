/// `attribution slurm`: a run as a chain of Slurm jobs, written as plain sbatch files a user can read and edit: a
/// prepare job (model and covariances), an array of shards after it, and the assembling run after every shard. A spec
/// with metrics that shards share out (ROAR's points, the blocks of negative perturbation, insertion/deletion,
/// Sensitivity-N and per-input metrics) gets two more between them: a maps job that stores the shards' maps whole, and a second wave of the same
/// shards for the metrics (the parameter-randomisation check and Taylor fidelity read no stored maps: the first wave
/// shares them out). The jobs share the cache folder, which must be on a filesystem every node sees.
module Experiments.SlurmScripts

open System
open System.IO

/// What the user asks of the cluster.
type Request =
    { Shards: int
      Partition: string option
      /// Wall-clock limit of each job (Slurm's syntax, e.g. 02:00:00).
      Time: string option
      GpusPerTask: int option
      /// Cores per job; every job runs libtorch on exactly this many threads, so that shards and the assembling run
      /// compute bit-identical numbers (libtorch's reductions depend on the thread count).
      CpusPerTask: int
      Memory: string option
      /// Lines added to every script's header verbatim (e.g. "#SBATCH --account=proj").
      Extra: string list
      /// A maps job and a second wave of shards for the metrics (the spec has metrics that shards share out).
      MetricWave: bool }

/// Where and how the jobs run: the program's command, the working folder, the cache, the spec file and its name.
type Setting =
    { Program: string
      WorkingFolder: string
      Cache: string
      SpecFile: string
      SpecName: string
      Folder: string }

/// A word for bash: single-quoted, its own single quotes escaped.
let private quote (s: string) = "'" + s.Replace("'", "'\\''") + "'"

/// The command that starts this program: its apphost, or `dotnet ASSEMBLY` when it runs under the dotnet host.
let programCommand () =
    let executable, before = SelfCommand.parts ()
    executable :: before |> List.map quote |> String.concat " "

let private header (request: Request) (setting: Setting) (job: string) (extra: string list) =
    [ yield "#!/bin/bash"
      yield $"#SBATCH --job-name=attribution-{setting.SpecName}-{job}"
      yield $"#SBATCH --output={setting.Folder}/logs/{job}-%%j.out"
      yield $"#SBATCH --cpus-per-task={request.CpusPerTask}"
      yield! extra
      match request.Partition with Some p -> yield $"#SBATCH --partition={p}" | None -> ()
      match request.Time with Some t -> yield $"#SBATCH --time={t}" | None -> ()
      match request.GpusPerTask with Some g -> yield $"#SBATCH --gpus-per-task={g}" | None -> ()
      match request.Memory with Some m -> yield $"#SBATCH --mem={m}" | None -> ()
      yield! request.Extra
      yield "set -euo pipefail"
      yield $"cd {quote setting.WorkingFolder}"
      yield "# the cache every job reads and writes: on a filesystem that every node sees"
      yield $"export ATTRIBUTION_CACHE={quote setting.Cache}"
      yield $"export ATTRIBUTION_THREADS={request.CpusPerTask}" ]

/// The job scripts and the script that submits them as a chain: (file name, text).
let scripts (request: Request) (setting: Setting) =
    let run (flags: string) = $"{setting.Program} run {quote setting.SpecFile} --only {quote setting.SpecName}{flags}"
    let prepare =
        header request setting "prepare" []
        @ [ "# the model (trained when the cache lacks it) and the class covariances, once for every shard"
            run " --prepare" ]
    // an array's log is named by the array's job id and the task's index (%A_%a), not by each task's own job id
    let arrayLog (line: string) = if line.StartsWith "#SBATCH --output=" then $"#SBATCH --output={setting.Folder}/logs/shard-%%A_%%a.out" else line
    let shards =
        (header request setting "shard" [ $"#SBATCH --array=0-{request.Shards - 1}"; "#SBATCH --requeue" ] |> List.map arrayLog)
        @ [ "# this task's share of the attribution steps, of ROAR's training maps and of the blocks of the checks that explain again"
            "# (parameter randomisation, Taylor fidelity), stored as parts in the cache (a re-run loses at most one call or block);"
            "# where the maps are stored whole (the second wave, after the maps job), its share of ROAR's points and of the metrics' blocks"
            run $" --shard \"$SLURM_ARRAY_TASK_ID/{request.Shards}\"" ]
    let maps =
        header request setting "maps" []
        @ [ "# the shards' parts assembled into whole maps (attribution steps and ROAR's training maps), so that the second wave shares out the metrics"
            run " --maps" ]
    let assemble =
        header request setting "assemble" []
        @ [ "# the shards' parts assembled, the metrics and the report (an ordinary run on the filled cache)"
            run "" ]
    // a job id as sbatch --parsable prints it, cut at a cluster name ("123;cluster")
    let id (name: string) = $"\"${{{name}%%%%;*}}\""
    let prepareId, shardsId, mapsId, metricShardsId, assembleId = id "prepare", id "shards", id "maps", id "metric_shards", id "assemble"
    let submit =
        [ yield "#!/bin/bash"
          if request.MetricWave then
              yield "# Submits the chain: prepare, the shards (afterok), the maps job (afterok on every shard), the second wave"
              yield "# of the same shards for the metrics (afterok), then the assembling run (afterok on every task of the second wave)."
          else
              yield "# Submits the chain: prepare, then the shards (afterok), then the assembling run (afterok on every shard)."
          yield "# Writes the job ids to jobs.env (resume.sh reads them) and prints them; `squeue --me` shows them."
          yield "set -euo pipefail"
          yield "here=$(cd \"$(dirname \"$0\")\" && pwd)"
          yield "mkdir -p \"$here/logs\""
          yield "prepare=$(sbatch --parsable \"$here/prepare.sbatch\")"
          yield $"shards=$(sbatch --parsable --dependency=afterok:{prepareId} \"$here/shards.sbatch\")"
          if request.MetricWave then
              yield $"maps=$(sbatch --parsable --dependency=afterok:{shardsId} \"$here/maps.sbatch\")"
              yield $"metric_shards=$(sbatch --parsable --dependency=afterok:{mapsId} \"$here/shards.sbatch\")"
              yield $"assemble=$(sbatch --parsable --dependency=afterok:{metricShardsId} \"$here/assemble.sbatch\")"
              yield $"printf 'PREPARE=%%s\\nSHARDS=%%s\\nMAPS=%%s\\nMETRIC_SHARDS=%%s\\nASSEMBLE=%%s\\n' {prepareId} {shardsId} {mapsId} {metricShardsId} {assembleId} > \"$here/jobs.env\""
          else
              yield $"assemble=$(sbatch --parsable --dependency=afterok:{shardsId} \"$here/assemble.sbatch\")"
              yield $"printf 'PREPARE=%%s\\nSHARDS=%%s\\nASSEMBLE=%%s\\n' {prepareId} {shardsId} {assembleId} > \"$here/jobs.env\""
          for name in [ "prepare"; "shards" ] @ (if request.MetricWave then [ "maps"; "metric_shards" ] else []) @ [ "assemble" ] do
              yield $"echo \"{name} ${{{name}%%%%;*}}\"" ]
    let resume =
        [ yield "#!/bin/bash"
          if request.MetricWave then
              yield "# Re-runs shards that failed or were cancelled: bash resume.sh TASK [TASK ...] for tasks of the first wave,"
              yield "# bash resume.sh --metrics TASK [TASK ...] for tasks of the second (task indices, e.g. 1 3)."
          else
              yield "# Re-runs shards that failed or were cancelled: bash resume.sh TASK [TASK ...] (task indices, e.g. 1 3)."
          yield "# Each task is requeued at once (it keeps the parts it had stored and loses at most the call it was in), and"
          yield "# the job after the array, which Slurm holds as 'DependencyNeverSatisfied' once a task of the array failed, is"
          yield "# made to wait for the requeued tasks instead."
          yield "set -euo pipefail"
          yield "here=$(cd \"$(dirname \"$0\")\" && pwd)"
          yield "source \"$here/jobs.env\""
          if request.MetricWave then
              yield "array=$SHARDS; next=$MAPS"
              yield "if [ \"${1:-}\" = --metrics ]; then array=$METRIC_SHARDS; next=$ASSEMBLE; shift; fi"
          else
              yield "array=$SHARDS; next=$ASSEMBLE"
          yield "[ $# -gt 0 ] || { echo \"usage: bash resume.sh TASK [TASK ...]\" >&2; exit 2; }"
          yield "for task in \"$@\"; do"
          yield "  scontrol requeue \"${array}_${task}\""
          yield "  # a requeued job is held for a while before it may start again; it may start now"
          yield "  scontrol update jobid=\"${array}_${task}\" StartTime=now"
          yield "done"
          yield "# every task, one by one: those that succeeded satisfy it already, the requeued ones when they succeed"
          yield $"after=$(seq -s : -f \"${{array}}_%%g\" 0 {request.Shards - 1})"
          yield "scontrol update jobid=\"$next\" Dependency=\"afterok:$after\""
          yield "echo \"requeued tasks $* of array $array; job $next waits for every task\"" ]
    [ yield "prepare.sbatch", prepare
      yield "shards.sbatch", shards
      if request.MetricWave then yield "maps.sbatch", maps
      yield "assemble.sbatch", assemble
      yield "submit.sh", submit
      yield "resume.sh", resume ]
    |> List.map (fun (name, lines) -> name, String.concat "\n" lines + "\n")

/// A program on PATH, or None (`sbatch` says whether this machine can submit to Slurm).
let onPath (program: string) =
    match Environment.GetEnvironmentVariable "PATH" with
    | null -> None
    | path ->
        path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
        |> Array.map (fun dir -> Path.Combine(dir, program))
        |> Array.tryFind File.Exists
