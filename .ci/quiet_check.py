"""Fail when the quickstart printed anything but kdedge's own output: a library warning, a deprecation notice,
a traceback. Reads a log on stdin and checks it from the quickstart's first line on (what comes before is pip's).
Progress bars redraw with carriage returns, so each redraw is checked on its own."""

import re
import sys

FIRST_LINE = "kdedge quickstart: "
OWN = [re.compile(p) for p in (
    r"kdedge quickstart: ",
    r".*\d+%\|.*\| *\d+/\d+ \[",  # a tqdm progress bar
    r"\S+( \S+)? epoch \d+ step \d+: dev ",  # the training loop's evaluations
    r"(early stopping: |resuming from step )",  # and its other messages
    r"(teacher|student|bundle|transfer set|report) written to ",
    r"exporting the teacher ",
    r"\S+ on \S+ \.\.\.$",  # kdedge bench, job by job
    r"(#|\||CPU: |Threads: |p50 ms with |Not measured:|Warnings:|- )",  # report.md
    r"warning: ",  # kdedge's own warnings (a bundle's preset that does not fit the CPU)
    r"\{\"text\": ",  # kdedge predict
    r"SST-2 dev accuracy: ",
)]

log = sys.stdin.read()
if FIRST_LINE not in log:
    sys.exit(f"the quickstart's first line ({FIRST_LINE!r}) is missing from its output")
foreign = [segment for line in log[log.index(FIRST_LINE):].splitlines() for segment in line.split("\r")
           if segment.strip() and not any(p.match(segment) for p in OWN)]
if foreign:
    print("the quickstart printed output that is not kdedge's own (silence known noise where it arises):")
    print("\n".join(f"  {segment[:200]}" for segment in foreign))
    sys.exit(1)
