/// The command line's grammar (Argu): commands, their options and their help texts. Cli.fs carries them out.
module Experiments.CliArgs

open Argu

type DeviceArgument =
    | Auto
    | Cpu
    | Cuda

type RunArgs =
    | [<MainCommand>] Specs of spec: string list
    | Device of DeviceArgument
    | Explain of inputs: int
    | Full
    | Output of folder: string
    | Only of name: string
    | Shard of share: string
    | Prepare
    | Maps
    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Specs _ -> "experiment specs (YAML); none runs the embedded quickstart."
            | Shard _ -> "I/N: compute only shard I (from 0) of N of the attribution steps (and of ROAR's training maps), as parts in the cache, and, where the maps are stored whole, of ROAR's points and the metrics' blocks; a later plain run assembles them and writes the report."
            | Prepare -> "only provide the model (training it) and the covariances in the cache: a cluster's prepare job, before the shards."
            | Maps -> "only assemble every attribution step (and ROAR's training maps) from the shards' parts and store them whole, no metric: between the shards and a second wave of shards, which then shares out ROAR's points and the metrics' blocks (negative perturbation, insertion/deletion, Sensitivity-N, per-input metrics)."
            | Only _ -> "run only the spec (document) with this name; repeat for several (a file may hold several specs separated by ---)."
            | Device _ -> "override the spec's device (auto = cuda when available)."
            | Explain _ -> "override the number of explained test images."
            | Full -> "run at the paper's scale: the spec's full section (every test input, the whole training set); the run is named NAME-full."
            | Output _ -> "override the folder the run folder is written under."

type SpecArgs =
    | [<MainCommand>] Specs of spec: string list
    | Only of name: string
    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Specs _ -> "experiment specs (YAML); none means the embedded quickstart."
            | Only _ -> "only the spec (document) with this name; repeat for several."

type PlanArgs =
    | [<MainCommand>] Specs of spec: string list
    | Only of name: string
    | Json
    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Specs _ -> "experiment specs (YAML); none means the embedded quickstart."
            | Only _ -> "only the spec (document) with this name; repeat for several."
            | Json -> "print the plan as JSON (one object per spec): steps, hashes, dependencies, sizes, cache state."

type BenchArgs =
    | Device of DeviceArgument
    | Model of name: string
    | Size of pixels: int
    | Epochs of int
    | Inputs of int
    | Samples of int
    | Batch of points: int
    | Repeats of int
    | Methods of ids: string list
    | Memory of inputs: int list
    | Json of file: string
    | Pytorch of folder: string
    | Precision of name: string
    | Quick
    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Device _ -> "device to measure on (default auto)."
            | Model _ -> "fashion_cnn (default) or a TorchVision architecture with random weights (resnet18, resnet50, vgg16, ...)."
            | Size _ -> "input side in pixels for a TorchVision model (default 224)."
            | Epochs _ -> "training epochs of fashion_cnn (default 8, as the shipped specs; 0 keeps random weights)."
            | Inputs _ -> "inputs explained per method (default 100; 4 for a TorchVision model)."
            | Samples _ -> "samples (or path steps) per input (default 50)."
            | Batch _ -> "points per forward/backward chunk (default 256, the spec's default)."
            | Repeats _ -> "rounds of floor-then-method per contender (default 5); the median and range are printed."
            | Methods _ -> "only these contenders (ids as printed; default: those with a floor at 28 pixels, all at natural-image size)."
            | Memory _ -> "measure the peak RSS of a whole run (two methods, negative perturbation, insertion/deletion, rank agreement) explaining these numbers of test inputs (e.g. 1000 10000); times no method unless --methods names some."
            | Json _ -> "write the figures to this JSON file."
            | Pytorch _ -> "also write the weights, inputs and saliency maps into this folder for scripts/bench_pytorch.py (the same methods in PyTorch)."
            | Quick -> "a check of your machine in under 2 minutes: random-weight fashion_cnn, 64 inputs, 3 repeats."
            | Precision _ -> "fp32 (default), tf32 (CUDA's tensor cores) or bf16 (a bfloat16 copy of the model; gradient methods only), as explain.precision."

type ListArgs =
    | Markdown
    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Markdown -> "print the tables of docs/dsl.md (methods, samplers, metrics) in Markdown."

type CacheArgs =
    | [<CliPrefix(CliPrefix.None)>] Verify of ParseResults<VerifyArgs>
    | [<CliPrefix(CliPrefix.None)>] Gc of ParseResults<GcArgs>
    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Verify _ -> "check every artefact of the cache against its checksum; with --repair, quarantine the bad ones."
            | Gc _ -> "remove the artefacts that none of the given specs needs."

and VerifyArgs =
    | Repair
    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Repair -> "move corrupt artefacts into the cache's quarantine folder (they are recomputed when needed)."

and GcArgs =
    | [<MainCommand>] Specs of spec: string list
    | Dry_Run
    | Full
    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Specs _ -> "the specs whose artefacts are kept (every document of each file)."
            | Dry_Run -> "only list what would be removed."
            | Full -> "also keep what the specs need at full scale (run --full)."

type ExportArgs =
    | [<MainCommand; ExactlyOnce>] Run of run: string
    | [<ExactlyOnce>] To of folder: string
    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Run _ -> "the run folder to export (written by `attribution run`: runs/NAME/RUN-ID, or runs/NAME for its latest run), read with the cache it ran with."
            | To _ -> "the folder to write: new, empty, or an earlier export (replaced whole)."

type SlurmArgs =
    | [<MainCommand>] Specs of spec: string list
    | Only of name: string
    | [<Mandatory>] Shards of count: int
    | Partition of name: string
    | Time of limit: string
    | Gpus_Per_Task of count: int
    | Cpus_Per_Task of count: int
    | Mem of amount: string
    | Sbatch of line: string
    | To of folder: string
    | Submit
    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Specs _ -> "the experiment spec (YAML; one document, or name it with --only); none means the embedded quickstart."
            | Only _ -> "the spec (document) of the file to run."
            | Shards _ -> "number of shards: the array job's tasks (0 .. N-1)."
            | Partition _ -> "Slurm partition of every job."
            | Time _ -> "wall-clock limit of every job (Slurm's syntax, e.g. 02:00:00)."
            | Gpus_Per_Task _ -> "GPUs of every job."
            | Cpus_Per_Task _ -> "cores of every job (default 1); every job runs on exactly this many threads, so the numbers are those of one process with --threads N."
            | Mem _ -> "memory of every job (Slurm's syntax, e.g. 16G)."
            | Sbatch _ -> "an extra #SBATCH line for every job, e.g. --sbatch '--account=myproject' (repeat for several)."
            | To _ -> "the folder of the scripts (default slurm/NAME)."
            | Submit -> "also submit the chain (bash FOLDER/submit.sh) and print the job ids."

type ResultsArgs =
    | Output of folder: string
    | Spec of name: string
    | Metric of name: string
    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Output _ -> "the folder whose results.sqlite to read (default runs, the specs' default output)."
            | Spec _ -> "only the runs of this spec name."
            | Metric _ -> "one table of this scalar (a metrics.csv name such as accuracy_gt, or SECTION/NAME) per run and method."

type CompareArgs =
    | [<MainCommand; ExactlyOnce>] Runs of a: string * b: string
    | Output of folder: string
    | All
    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Runs _ -> "two run ids (or unambiguous prefixes), as `attribution results` lists them."
            | Output _ -> "the folder whose results.sqlite to read (default runs)."
            | All -> "list every number, not only those that differ."

type Command =
    | [<CliPrefix(CliPrefix.None)>] Run of ParseResults<RunArgs>
    | [<CliPrefix(CliPrefix.None)>] Plan of ParseResults<PlanArgs>
    | [<CliPrefix(CliPrefix.None)>] Validate of ParseResults<SpecArgs>
    | [<CliPrefix(CliPrefix.None)>] List of ParseResults<ListArgs>
    | [<CliPrefix(CliPrefix.None)>] Bench of ParseResults<BenchArgs>
    | [<CliPrefix(CliPrefix.None)>] Cache of ParseResults<CacheArgs>
    | [<CliPrefix(CliPrefix.None)>] Export of ParseResults<ExportArgs>
    | [<CliPrefix(CliPrefix.None)>] Slurm of ParseResults<SlurmArgs>
    | [<CliPrefix(CliPrefix.None)>] Results of ParseResults<ResultsArgs>
    | [<CliPrefix(CliPrefix.None)>] Compare of ParseResults<CompareArgs>
    | [<AltCommandLine("-v")>] Verbose
    | Threads of count: int
    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Run _ -> "validate, plan and run experiments; write their run folders."
            | Plan _ -> "print the run plan (steps, content hashes, cache state) without running."
            | Validate _ -> "check specs and report every error with file:line:column."
            | List _ -> "list the methods, samplers and metrics with their parameters and defaults."
            | Bench _ -> "time each method against the floor (forward plus input-gradient passes), with peak memory (fresh, no cache)."
            | Cache _ -> "check the cache (verify) or remove what no spec needs (gc)."
            | Export _ -> "write a finished run's inputs, covariances, maps and per-input metric values as safetensors and JSON, for checking outside .NET."
            | Results _ -> "list the recorded runs (every run adds its numbers to OUTPUT/results.sqlite), or one metric across runs."
            | Compare _ -> "print two recorded runs' differences side by side."
            | Slurm _ -> "write (and with --submit submit) a run as Slurm jobs: prepare, an array of shards (twice, around a maps job, when the spec has metrics that shards share out), the assembling run."
            | Verbose -> "print stack traces for every error (anywhere on the command line)."
            | Threads _ -> "libtorch's CPU threads (anywhere on the command line; default: $ATTRIBUTION_THREADS, else the cores this process may use)."
