/// A full disk is told as such (exit 3, what to do), not as a bug: the error .NET raises for ENOSPC is recognised.
module DiskFullTests

open System.IO
open Expecto
open Experiments

[<Tests>]
let tests =
    testList "disk full" [
        test "a write to a full device (/dev/full gives ENOSPC) is recognised as a full disk; a missing file is not" {
            if not (File.Exists "/dev/full") then skiptest "no /dev/full on this machine"
            let error =
                try
                    use stream = new FileStream("/dev/full", FileMode.Open, FileAccess.Write)
                    stream.Write(Array.zeroCreate<byte> 65536, 0, 65536)
                    stream.Flush()
                    None
                with e -> Some e
            match error with
            | Some(DiskFull.DiskFull _) -> ()
            | Some e -> failtest $"ENOSPC not recognised: {e.GetType().Name} HResult {e.HResult}: {e.Message}"
            | None -> failtest "writing to /dev/full did not fail"
            match FileNotFoundException("gone") :> exn with
            | DiskFull.DiskFull _ -> failtest "a missing file is not a full disk"
            | _ -> ()
        }
    ]
