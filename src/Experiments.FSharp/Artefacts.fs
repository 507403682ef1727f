/// The cache: artefacts keyed by their step's content hash, written atomically, so an interrupted run
/// resumes where it stopped and an identical step is never computed twice.
module Experiments.Artefacts

open System
open System.IO
open System.Text.Json
open Attribution.IO

/// The cache folder: $ATTRIBUTION_CACHE, else .cache in the working directory.
let root () =
    match Environment.GetEnvironmentVariable "ATTRIBUTION_CACHE" with
    | null | "" -> Path.GetFullPath ".cache"
    | dir -> Path.GetFullPath dir

let path (kind: string) (hash: string) (extension: string) = Path.Combine(root (), kind, hash + extension)

let private json = JsonSerializerOptions(WriteIndented = true, NumberHandling = Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals)

/// Where corrupt artefacts are moved, out of the way of every lookup but kept for a person to inspect.
let quarantineFolder () = Path.Combine(root (), "quarantine")

/// Moves a corrupt artefact into the quarantine folder (under its cache-relative path and the time) and says so in
/// one line; the caller then recomputes it. Another process may have moved or replaced it first: that is fine.
let quarantine (file: string) (reason: string) =
    let relative = Path.GetRelativePath(root (), file)
    let target = Path.Combine(quarantineFolder (), $"""{DateTime.UtcNow.ToString "yyyyMMddTHHmmssfff"}-{relative.Replace(Path.DirectorySeparatorChar, '_')}""")
    try
        Directory.CreateDirectory(quarantineFolder ()) |> ignore
        File.Move(file, target)
        Progress.say $"cache: {relative} is corrupt ({reason}); moved to {Path.GetRelativePath(root (), target)}, recomputing it"
    with :? FileNotFoundException | :? DirectoryNotFoundException -> ()

let private sha256 (text: string) =
    Security.Cryptography.SHA256.HashData(Text.Encoding.UTF8.GetBytes text) |> Convert.ToHexStringLower

/// JSON artefacts are sealed: { "sha256": hash of the value's text, "value": the value }, so that a flipped bit or an
/// edited number is found when the artefact is read.
let writeJson (file: string) (value: 'T) =
    let text = JsonSerializer.Serialize(value, json)
    AtomicFile.WriteAllText(file, $"{{\n\"sha256\": \"{sha256 text}\",\n\"value\": {text}\n}}\n")

/// The value of a sealed JSON artefact, or why it cannot be trusted.
let tryReadJson<'T> (file: string) : Result<'T, string> =
    try
        use document = JsonDocument.Parse(File.ReadAllText file)
        let top = document.RootElement
        if top.ValueKind <> JsonValueKind.Object then Error "not a sealed artefact"
        else
            match top.TryGetProperty "sha256", top.TryGetProperty "value" with
            | (true, seal), (true, value) ->
                let text = value.GetRawText()
                if seal.ValueKind <> JsonValueKind.String || seal.GetString() <> sha256 text then Error "its checksum does not match its content"
                else
                    match JsonSerializer.Deserialize(text, typeof<'T>, json) with
                    | null -> Error "it holds no value"
                    | v -> Ok(unbox<'T> v)
            | _ -> Error "it has no checksum (an older format, or not an artefact)"
    with
    | :? JsonException as e -> Error $"not valid JSON: {e.Message}"
    | :? NotSupportedException as e -> Error $"not of the expected shape: {e.Message}"
    | :? IOException as e -> Error e.Message

/// The cached JSON artefact if it is there and sound, else None (a corrupt one is quarantined).
let tryJson<'T> (file: string) : 'T option =
    if not (File.Exists file) then None
    else
        match tryReadJson<'T> file with
        | Ok v -> Some v
        | Error reason ->
            quarantine file reason
            None

/// Returns the cached JSON artefact, or computes, stores and returns it; a corrupt one is quarantined and recomputed.
let jsonOrCompute<'T> (file: string) (compute: unit -> 'T) : 'T * bool =
    match tryJson<'T> file with
    | Some v -> v, true
    | None ->
        let value = compute ()
        writeJson file value
        value, false

/// Whether a cached safetensors artefact is there and sound (checksums verified, streamed); a corrupt one is quarantined.
let soundTensors (file: string) =
    File.Exists file
    && (let check = Attribution.Models.Safetensors.Verify file
        // The message starts with the path, which quarantine names itself.
        check.IsValid || (quarantine file (check.Message.Substring(min check.Message.Length (file.Length + 2))); false))

/// The tensors and metadata of a cached safetensors artefact if it is there and sound (its checksums verified while
/// reading, from one open file), else None (a corrupt one is quarantined). The caller owns the tensors.
let tryTensorsWithMetadata (file: string) =
    if not (File.Exists file) then None
    else
        try Some(Attribution.Models.Safetensors.LoadVerifiedWithMetadata file)
        with
        | :? CorruptFileException as e ->
            quarantine file e.Reason
            None
        // Another process removed it between the check and the read (a part, once its step is stored): as if absent.
        | :? FileNotFoundException -> None

/// The tensors of a cached safetensors artefact if it is there and sound, else None (see tryTensorsWithMetadata).
let tryTensors (file: string) = tryTensorsWithMetadata file |> Option.map (fun (struct (tensors, _)) -> tensors)

/// The SHA-256 of a file the user named (weights, data files): by content, never by name or modification time. A memo
/// under the cache's inputs/ folder skips re-reading a file whose identity (device, inode, size, ctime, mtime) has not
/// changed; ctime cannot be set back by `touch`, so a replaced file is always read again.
let contentHash (file: string) =
    try ContentHash.OfFile(file, Path.Combine(root (), "inputs"))
    with :? IOException | :? UnauthorizedAccessException as e -> raise (Experiments.InputProblem $"{file}: cannot be read ({e.Message})")

/// The cache folder, created if missing; an unusable one (a file, not writable) is the user's to fix (exit 3).
let ensureRoot () =
    let dir = root ()
    if File.Exists dir then raise (Experiments.CacheProblem $"the cache folder {dir} is a file (ATTRIBUTION_CACHE or .cache); name a folder")
    try
        Directory.CreateDirectory dir |> ignore
        let probe = Path.Combine(dir, $".write-test-{Environment.ProcessId}")
        File.WriteAllText(probe, "")
        File.Delete probe
    with :? IOException | :? UnauthorizedAccessException as e ->
        raise (Experiments.CacheProblem $"the cache folder {dir} cannot be written ({e.Message}); set ATTRIBUTION_CACHE to a writable folder")
