/// Specs as code outside the test process: the shipped F# scripts run under `dotnet fsi` (plan only), and a program
/// of a user's own, outside the repository, references the library and computes a map, TorchSharp's natives loaded
/// through the library's fallback on systems that need the Debian 12 patch.
module ScriptsTests

open System
open System.Diagnostics
open System.IO
open Expecto
open Experiments

let private repoRoot = TestProcesses.repoRoot

/// Runs a command to its end: exit code and everything it printed.
let private run (folder: string) (environment: (string * string) list) (program: string) (arguments: string list) =
    let code, output, error = TestProcesses.run folder environment program arguments
    code, output + error

/// A C# program of a user's, referencing the library by its project file.
let private userProject (library: string) =
    String.concat "\n"
        [ """<Project Sdk="Microsoft.NET.Sdk">"""
          """  <PropertyGroup><OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework><ImplicitUsings>enable</ImplicitUsings><Nullable>enable</Nullable></PropertyGroup>"""
          $"""  <ItemGroup><ProjectReference Include="{library}" /></ItemGroup>"""
          "</Project>" ]

/// Saliency of a linear model's logit is the target's row of weights: the program prints whether it is.
let private userProgram =
    String.concat "\n"
        [ "using TorchSharp;"
          "using Attribution.Methods;"
          "Attribution.Runtime.TorchRuntime.Initialise();"
          "torch.manual_seed(1);"
          "var model = torch.nn.Sequential((\"fc\", torch.nn.Linear(4, 3)));"
          "var x = torch.ones(2, 4);"
          "using var e = Presets.Saliency(false).Explain(model, x, torch.tensor(new long[] { 0, 2 }), new ExplainOptions(OutputFunction.Logit));"
          "var weights = model.parameters().First();"
          "Console.WriteLine(e.Maps[0].allclose(weights[0]) && e.Maps[1].allclose(weights[2]) ? \"saliency = weights\" : \"wrong\");" ]

[<Tests>]
let tests =
    testSequenced <| testList "specs as code" [
        test "the shipped F# scripts run under dotnet fsi from any folder, and the quickstart script plans what its YAML plans" {
            // The scripts load the Release build of src/Experiments.FSharp, which building the tests produced.
            let elsewhere = TestFiles.freshDir "fsi"
            for script in [ "quickstart.fsx"; "noise-sweep.fsx" ] do
                let code, output = run elsewhere [ "ATTRIBUTION_PLAN_ONLY", "1" ] "dotnet" [ "fsi"; Path.Combine(repoRoot, "experiments", script) ]
                Expect.equal code 0 $"{script}:\n{output}"
                Expect.stringContains output "plan for '" script
            let _, output = run elsewhere [ "ATTRIBUTION_PLAN_ONLY", "1" ] "dotnet" [ "fsi"; Path.Combine(repoRoot, "experiments", "quickstart.fsx") ]
            let yaml = match Yaml.parseFile (Path.Combine(repoRoot, "experiments", "quickstart.yaml")) with Ok s -> s | Error e -> failtest (SpecError.formatAll e)
            let expected = Plan.describe (Plan.compile yaml (Execute.dataHash yaml))
            Expect.stringContains (output.Replace("\r\n", "\n")) expected "the same steps and hashes as experiments/quickstart.yaml"
        }

        test "an F# script that loads the toolkit computes with TorchSharp, whatever libtorch the system also has" {
            // Debian's python3-torch registers libtorch 1.13 with the system loader; a script once bound TorchSharp's glue
            // to it by name and failed with an undefined symbol. The toolkit loads TorchSharp's own libtorch by path first.
            let folder = TestFiles.freshDir "fsi-torch"
            let script = Path.Combine(folder, "sum.fsx")
            let toolkit = Path.Combine(repoRoot, "experiments", "toolkit.fsx")
            File.WriteAllText(script, String.concat "\n" [ $"#load \"{toolkit}\""
                                                           "let x = TorchSharp.torch.arange(1L, 6L, dtype = TorchSharp.torch.ScalarType.Float64)"
                                                           "printfn \"sum of 1..5 = %g\" (x.sum().item<float>())" ])
            let code, output = run folder [] "dotnet" [ "fsi"; script ]
            Expect.equal code 0 output
            Expect.stringContains output "sum of 1..5 = 15" output
        }

        test "a user's own C# program outside the repository references the library and explains a model" {
            let project = TestFiles.freshDir "user-program"
            File.WriteAllText(Path.Combine(project, "user.csproj"), userProject (Path.Combine(repoRoot, "src", "Attribution.CSharp", "Attribution.CSharp.csproj")))
            File.WriteAllText(Path.Combine(project, "Program.cs"), userProgram)
            // The native fallback caches its patched copy here, not in the user's home.
            let environment = [ "XDG_CACHE_HOME", Path.Combine(project, "xdg-cache"); "DOTNET_CLI_TELEMETRY_OPTOUT", "1" ]
            let code, output = run project environment "dotnet" [ "build"; "-c"; "Release"; "--nologo"; "-v"; "q" ]
            Expect.equal code 0 $"build:\n{output}"
            let code, output = run project environment "dotnet" [ Path.Combine(project, "bin", "Release", "net10.0", "user.dll") ]
            Expect.equal code 0 output
            Expect.stringContains output "saliency = weights" output
            // Where the system's libstdc++ predates GLIBCXX_3.4.32 (Debian 12), the program's own copy of TorchSharp's
            // glue cannot load: the library's fallback patched a copy into the cache, which this asserts.
            let libstdcxx = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"
            if File.Exists libstdcxx && not ((File.ReadAllText libstdcxx).Contains "GLIBCXX_3.4.32") then
                let patched = Directory.GetFiles(Path.Combine(project, "xdg-cache"), "libLibTorchSharp.so", SearchOption.AllDirectories)
                Expect.hasLength patched 1 "the fallback's patched copy of the glue is in the cache"
            // The program's build holds libtorch (about 900 MB): removed once it passed (a failure keeps it to look at),
            // or every run of the suite leaves that much in /tmp.
            Directory.Delete(project, true)
        }
    ]
