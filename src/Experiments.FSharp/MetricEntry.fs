namespace Experiments

// A metric as the registry holds it: its yaml name, doc and parameters (a Variant), the facts validation and the report
// read (the modalities and datasets it is defined on, which of its scalars are better high), and, for a metric defined
// outside the library, the engine's IMetric that evaluates it. Shipped metrics are one file each under Metrics/; their
// evaluation, which may retrain models or build new inputs, is one file each under MetricRuns/ (it needs the run's
// model, maps and data set, which are compiled after the registry). A user's is built with MetricEntry.custom and
// registered with MetricRegistry.register.

open Attribution.Metrics

/// What the toolkit needs to know of a metric beyond its parameters.
type MetricFacts =
    { /// The modalities the metric is defined on; another is a located spec error.
      Modalities: Modality list
      /// The datasets it needs (spoken words); empty: any dataset of its modalities.
      Datasets: DatasetKind list
      /// It needs the test inputs' ground-truth boxes (fashion_canvas, or a data file with test_boxes).
      NeedsBoxes: bool
      /// Scalars of its results and whether higher is better (true) or lower (false).
      Better: (string * bool) list }

module MetricFacts =
    /// A metric defined on every modality, with no scalar to rank by.
    let everywhere = { Modalities = [ Modality.Image; Modality.Audio; Modality.Text; Modality.Tabular ]; Datasets = []; NeedsBoxes = false; Better = [] }

/// A metric of the registry.
type MetricEntry =
    { /// The yaml name (`metric: NAME`), doc and parameters.
      Variant: Variant<MetricSpec>
      /// The facts of one parameter setting.
      Facts: MetricSpec -> MetricFacts
      /// The engine's metric of one parameter setting, for metrics defined outside the library; None for the shipped
      /// ones, which the runner evaluates itself.
      Build: (MetricSpec -> IMetric) option
      /// Raised when the metric's definition changes (what a cached result means), so that cached results of the old
      /// definition are not reused; 1 for the first, and then left out of the cache key (keeping old keys).
      Revision: int }

    member e.Name = e.Variant.Name

module MetricEntry =
    /// A shipped metric: its codec and facts; the runner evaluates it.
    let shipped (variant: Variant<MetricSpec>) (facts: MetricFacts) = { Variant = variant; Facts = (fun _ -> facts); Build = None; Revision = 1 }

    /// The entry with its definition's revision (see MetricEntry.Revision).
    let revised (revision: int) (entry: MetricEntry) = { entry with Revision = revision }

    /// An entry for a per-method metric defined outside the library, whose parameters are a value of the caller's type
    /// 'p, read and written by `fields`. Register it with MetricRegistry.register; YAML then takes `metric: NAME`.
    let custom (name: string) (doc: string) (fields: Fields<'p, 'p>) (facts: 'p -> MetricFacts) (build: 'p -> IMetric) =
        let wrap (p: 'p) = RegisteredMetric { Entry = name; Parameters = box p }
        let unwrap (metric: MetricSpec) =
            match metric with
            | RegisteredMetric r when r.Entry = name -> Some(unbox<'p> r.Parameters)
            | _ -> None
        let parameters metric =
            match unwrap metric with
            | Some p -> p
            | None -> invalidArg "metric" $"the entry '{name}' was given another metric's parameters: %A{metric}"
        { Variant = Variant.make name doc fields wrap unwrap
          Facts = parameters >> facts
          Build = Some(parameters >> build)
          Revision = 1 }
