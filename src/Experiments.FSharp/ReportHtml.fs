/// report.html: the run's report.md as one HTML page that a browser opens straight from the run folder (the heatmaps
/// and curves it shows sit beside it), for readers without a Markdown viewer. The Markdown stays the source: this is
/// the same text, rendered by Markdig (CommonMark with pipe tables).
module Experiments.ReportHtml

open System.Net
open Markdig

// Raw HTML in the Markdown is shown as text, not interpreted: the report quotes names from the spec and the data (ids,
// class names, method descriptions) that may contain '<'.
let private pipeline = MarkdownPipelineBuilder().UsePipeTables().UseAutoLinks().DisableHtml().Build()

// Tables of numbers read best right-aligned (the Markdown's `---:` columns carry their own alignment).
let private style =
    String.concat "\n"
        [ "body { font-family: system-ui, sans-serif; max-width: 80em; margin: 2em auto; padding: 0 1em; line-height: 1.45; }"
          "table { border-collapse: collapse; margin: 0.5em 0; }"
          "th, td { border: 1px solid #ccc; padding: 0.15em 0.6em; }"
          "th { background: #f3f3f3; }"
          "code { background: #f4f4f4; padding: 0 0.2em; }"
          "img { max-width: 100%; }" ]

/// The page of a report: its title and its Markdown text.
let render (title: string) (markdown: string) =
    let body = Markdown.ToHtml(markdown, pipeline)
    String.concat "\n"
        [ "<!DOCTYPE html>"
          "<html lang=\"en\">"
          "<head>"
          "<meta charset=\"utf-8\">"
          $"<title>{WebUtility.HtmlEncode title}</title>"
          $"<style>\n{style}\n</style>"
          "</head>"
          "<body>"
          body
          "</body>"
          "</html>"
          "" ]
