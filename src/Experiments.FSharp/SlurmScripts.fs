/// `attribution slurm`: a run as a chain of three Slurm jobs, written as plain sbatch files a user can read and
/// edit: a prepare job (model and covariances), an array of shards after it, and the assembling run after every
/// shard. The jobs share the cache folder, which must be on a filesystem every node sees.
module Experiments.SlurmScripts

open System
open System.IO
open System.Reflection

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
      Extra: string list }

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
    match Environment.ProcessPath with
    | null -> failwith "the path of this program is unknown"
    | path when Path.GetFileNameWithoutExtension path = "dotnet" ->
        match Assembly.GetEntryAssembly() with
        | null -> failwith "the entry assembly of this program is unknown"
        | entry -> $"{quote path} {quote entry.Location}"
    | path -> quote path

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

/// The three job scripts and the script that submits them as a chain: (file name, text).
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
        @ [ "# this task's share of the attribution steps and of ROAR's training maps, stored as parts in the cache (a re-run loses at most one call)"
            run $" --shard \"$SLURM_ARRAY_TASK_ID/{request.Shards}\"" ]
    let assemble =
        header request setting "assemble" []
        @ [ "# the shards' parts assembled, the metrics and the report (an ordinary run on the filled cache)"
            run "" ]
    let submit =
        [ "#!/bin/bash"
          "# Submits the chain: prepare, then the shards (afterok), then the assembling run (afterok on every shard)."
          "# Prints the three job ids; `squeue --me` shows them."
          "set -euo pipefail"
          "here=$(cd \"$(dirname \"$0\")\" && pwd)"
          "mkdir -p \"$here/logs\""
          "prepare=$(sbatch --parsable \"$here/prepare.sbatch\")"
          "shards=$(sbatch --parsable --dependency=afterok:\"${prepare%%;*}\" \"$here/shards.sbatch\")"
          "assemble=$(sbatch --parsable --dependency=afterok:\"${shards%%;*}\" \"$here/assemble.sbatch\")"
          "printf 'PREPARE=%s\\nSHARDS=%s\\nASSEMBLE=%s\\n' \"${prepare%%;*}\" \"${shards%%;*}\" \"${assemble%%;*}\" > \"$here/jobs.env\""
          "echo \"prepare ${prepare%%;*}\""
          "echo \"shards ${shards%%;*}\""
          "echo \"assemble ${assemble%%;*}\"" ]
    let resume =
        [ "#!/bin/bash"
          "# Re-runs shards that failed or were cancelled: bash resume.sh TASK [TASK ...] (task indices, e.g. 1 3)."
          "# Each task is requeued at once (it keeps the parts it had stored and loses at most the call it was in), and"
          "# the assembling job, which Slurm holds as 'DependencyNeverSatisfied' once a task of its array failed, is"
          "# made to wait for the requeued tasks instead."
          "set -euo pipefail"
          "here=$(cd \"$(dirname \"$0\")\" && pwd)"
          "source \"$here/jobs.env\""
          "[ $# -gt 0 ] || { echo \"usage: bash resume.sh TASK [TASK ...]\" >&2; exit 2; }"
          "for task in \"$@\"; do"
          "  scontrol requeue \"${SHARDS}_${task}\""
          "  # a requeued job is held for a while before it may start again; it may start now"
          "  scontrol update jobid=\"${SHARDS}_${task}\" StartTime=now"
          "done"
          "# every task, one by one: those that succeeded satisfy it already, the requeued ones when they succeed"
          $"after=$(seq -s : -f \"${{SHARDS}}_%%g\" 0 {request.Shards - 1})"
          "scontrol update jobid=\"$ASSEMBLE\" Dependency=\"afterok:$after\""
          "echo \"requeued tasks $*; assemble job $ASSEMBLE waits for every task\"" ]
    [ "prepare.sbatch", prepare; "shards.sbatch", shards; "assemble.sbatch", assemble; "submit.sh", submit; "resume.sh", resume ]
    |> List.map (fun (name, lines) -> name, String.concat "\n" lines + "\n")

/// A program on PATH, or None (`sbatch` says whether this machine can submit to Slurm).
let onPath (program: string) =
    match Environment.GetEnvironmentVariable "PATH" with
    | null -> None
    | path ->
        path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
        |> Array.map (fun dir -> Path.Combine(dir, program))
        |> Array.tryFind File.Exists
