/// report.html: the report's Markdown as a page, its tables and images kept, and text from specs and data shown as
/// text, never interpreted as HTML.
module ReportHtmlTests

open Expecto
open Experiments

[<Tests>]
let tests =
    testList "report html" [
        test "tables, alignment and images carry over; raw HTML from names is escaped" {
            let markdown =
                String.concat "\n"
                    [ "# a <run>"
                      ""
                      "| method | value |"
                      "|---|---:|"
                      "| <script>alert(1)</script> | 0.5 |"
                      ""
                      "![heatmaps-absolute.png](heatmaps-absolute.png)"
                      ""
                      "tokens set to `<unk>`" ]
            let html = ReportHtml.render "a <run>" markdown
            Expect.stringContains html "<title>a &lt;run&gt;</title>" "the title is escaped"
            Expect.stringContains html "<th style=\"text-align: right;\">value</th>" "a right-aligned column stays right-aligned"
            Expect.stringContains html "<img src=\"heatmaps-absolute.png\"" "the image is shown from the run folder"
            Expect.isFalse (html.Contains "<script>") "a name that looks like HTML is not interpreted"
            Expect.stringContains html "&lt;script&gt;" "it is shown as text"
            Expect.stringContains html "<code>&lt;unk&gt;</code>" "code spans as code"
        }
    ]
