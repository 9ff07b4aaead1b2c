/// The bench's one table: a row per figure, a column per contestant, then the reference the
/// ratio is taken against, the ratio, its target and whether it is met.
namespace Wal.Bench

open System

type Row =
    {
        Name: string
        /// One cell per contestant, in Contestant.all's order ("" where it does not apply).
        Cells: string list
        Reference: string
        Ratio: string
        Target: string
        Met: string
    }

[<RequireQualifiedAccess>]
module Table =

    /// A row without a ratio (figures only).
    let figures name cells =
        {
            Name = name
            Cells = cells
            Reference = ""
            Ratio = ""
            Target = ""
            Met = ""
        }

    /// A row whose ratio must be at least (or, when atMost, at most) target.
    let judged name cells reference (ratio: float) (target: float) (atMost: bool) =
        let met =
            if Double.IsNaN ratio then
                "-"
            elif (if atMost then ratio <= target else ratio >= target) then
                "met"
            else
                "NOT MET"

        {
            Name = name
            Cells = cells
            Reference = reference
            Ratio = (if Double.IsNaN ratio then "-" else $"%.2f{ratio}x")
            Target = (if atMost then $"<= %.2g{target}x" else $">= %.2g{target}x")
            Met = met
        }

    /// Thousands-separated whole number.
    let count (x: float) =
        x.ToString("N0", Globalization.CultureInfo.InvariantCulture)

    /// Renders the rows as a Markdown table (readable as text, pasteable into bench/README.md).
    let render (rows: Row list) =
        let header =
            [ "row" ]
            @ (Contestant.all |> List.map Contestant.name)
            @ [ "reference"; "ratio"; "target"; "met" ]

        let lines =
            header
            :: [
                for r in rows -> [ r.Name ] @ r.Cells @ [ r.Reference; r.Ratio; r.Target; r.Met ]
            ]

        let widths =
            [
                for i in 0 .. header.Length - 1 -> lines |> List.map (fun l -> l[i].Length) |> List.max
            ]

        let line (cells: string list) =
            let padded =
                List.mapi2 (fun i (c: string) w -> if i = 0 then c.PadRight w else c.PadLeft w) cells widths

            "| " + String.Join(" | ", padded) + " |"

        let rule =
            "|"
            + String.Join(
                "|",
                widths
                |> List.mapi (fun i w ->
                    if i = 0 then
                        String('-', w + 2)
                    else
                        String('-', w + 1) + ":")
            )
            + "|"

        String.Join("\n", [ line header; rule ] @ (lines.Tail |> List.map line))
