/// Samplers beyond the shipped five: an entry a user builds from their own code (SamplerEntry.custom, with an engine
/// ISampler of theirs) and registers here; YAML then takes `sampler: { kind: NAME, ... }` in any sampling method.
module Experiments.SamplerRegistry

open System.Collections.Generic
open Attribution.Sampling
open Experiments
open Experiments.Building

/// What validation needs to know of a registered sampler.
type SamplerFacts =
    { /// The sampler is Gaussian (implements IGaussianSampler): the Fisher statistic may use it.
      Gaussian: bool
      /// The sampler works on image pixels only.
      ImagesOnly: bool }

/// A registered sampler: its yaml codec (name, doc, parameters), facts and factory.
type SamplerEntry =
    { Variant: Variant<SamplerSpec>
      Facts: SamplerSpec -> SamplerFacts
      Build: MethodContext -> SamplerSpec -> ISampler }

    member e.Name = e.Variant.Name

/// An entry for a sampler whose parameters are a value of the caller's type 'p, read and written by `fields`.
let custom (name: string) (doc: string) (fields: Fields<'p, 'p>) (facts: 'p -> SamplerFacts) (build: MethodContext -> 'p -> ISampler) =
    let wrap (p: 'p) = RegisteredSampler { Entry = name; Parameters = box p }
    let unwrap (spec: SamplerSpec) =
        match spec with
        | RegisteredSampler r when r.Entry = name -> Some(unbox<'p> r.Parameters)
        | _ -> None
    let parameters spec =
        match unwrap spec with
        | Some p -> p
        | None -> invalidArg "spec" $"the entry '{name}' was given another sampler's parameters: %A{spec}"
    { Variant = Variant.make name doc fields wrap unwrap
      Facts = parameters >> facts
      Build = fun context spec -> build context (parameters spec) }

let private registered = List<SamplerEntry>()

/// Adds a sampler defined outside the library; its name must be new and safe as a yaml name.
let register (entry: SamplerEntry) =
    lock registered (fun () ->
        match Vocabulary.identProblem entry.Name with
        | Some problem -> invalidArg "entry" $"sampler name '{entry.Name}' {problem}"
        | None when Vocabulary.samplerNames () |> List.contains entry.Name -> invalidArg "entry" $"a sampler named '{entry.Name}' is already registered"
        | None ->
            registered.Add entry
            Vocabulary.addSampler entry.Variant)

/// Removes a registered sampler (tests register and remove their own).
let unregister (name: string) =
    lock registered (fun () ->
        registered.RemoveAll(fun e -> e.Name = name) |> ignore
        Vocabulary.removeSampler name)

let private entryOf (r: EntryParameters) =
    lock registered (fun () -> registered |> Seq.tryFind (fun e -> e.Name = r.Entry))
    |> Option.defaultWith (fun () -> invalidArg "spec" $"no sampler named '{r.Entry}' is registered (SamplerRegistry.register)")

/// The facts of a registered sampler (None for the shipped ones, whose rules Validate states case by case).
let facts (spec: SamplerSpec) =
    match spec with
    | RegisteredSampler r -> Some((entryOf r).Facts spec)
    | _ -> None

/// The engine's sampler for any sampler of a spec.
let build (context: MethodContext) (spec: SamplerSpec) : ISampler =
    match spec with
    | RegisteredSampler r -> (entryOf r).Build context spec
    | shipped -> shippedSampler shipped context
