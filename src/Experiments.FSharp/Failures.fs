namespace Experiments

// The errors a user can cause, each ending the program with one message and a documented exit code (README,
// "Exit codes"). Everything else that escapes is a bug in the toolkit: exit 70, with its stack trace.

/// A spec that cannot run as written, found only once work started (e.g. a class with too few training inputs for
/// its covariance). Path is the field to blame ("data.train_limit"); the CLI locates it in the spec's source.
exception SpecProblem of path: string * message: string

/// A file the user gave (data, weights) or what it yields (non-finite outputs, non-finite maps) is unusable.
exception InputProblem of message: string

/// The cache folder itself is unusable (not a folder, not writable). Corrupt artefacts in it are not this: they are
/// quarantined and recomputed.
exception CacheProblem of message: string

module ExitCode =
    [<Literal>]
    let Ok = 0
    /// A bad spec or command line.
    [<Literal>]
    let BadSpec = 1
    /// A bad input file, weights file, or what they yield.
    [<Literal>]
    let BadInput = 2
    /// An unusable cache folder.
    [<Literal>]
    let BadCache = 3
    /// A bug in the toolkit (EX_SOFTWARE).
    [<Literal>]
    let Internal = 70

/// A write that failed because the file system is full (ENOSPC): the machine's condition, not a bug, so the CLI says
/// so with what to do. .NET on Linux gives the errno as the IOException's HResult.
module DiskFull =
    [<Literal>]
    let private ENOSPC = 28

    let (|DiskFull|_|) (e: exn) =
        let rec find (e: exn) =
            match e with
            | :? System.IO.IOException as io when io.HResult = ENOSPC || io.Message.Contains "No space left on device" -> Some io
            | _ ->
                match e.InnerException with
                | null -> None
                | inner -> find inner
        find e
