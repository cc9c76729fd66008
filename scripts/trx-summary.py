#!/usr/bin/env python3
"""Counts the test results of every TRX file in a folder and prints 'N passed, N failed, N skipped'.
Per-test outcomes are counted (xunit's skipped tests are outcome NotExecuted; the Counters element leaves
them out of notExecuted). A TRX file that holds no results at all counts as a failure.
Every skipped test is listed with its reason and every failed one by name (on stderr, above the summary line)."""
import glob
import sys
import xml.etree.ElementTree as ET

NS = "{http://microsoft.com/schemas/VisualStudio/TeamTest/2010}"
passed = failed = skipped = 0
notes = []
files = glob.glob(f"{sys.argv[1]}/**/*.trx", recursive=True)
if not files:
    sys.exit(1)
for path in files:
    results = ET.parse(path).getroot().findall(f"{NS}Results/{NS}UnitTestResult")
    if not results:
        failed += 1
    for result in results:
        outcome = result.get("outcome", "")
        if outcome == "Passed":
            passed += 1
        elif outcome == "NotExecuted":
            skipped += 1
            reason = " ".join(t.strip() for t in result.itertext() if t.strip()) or "(no reason given)"
            notes.append(f"skipped: {result.get('testName')}: {reason}")
        else:
            failed += 1
            notes.append(f"failed:  {result.get('testName')}")
for note in notes:
    print(note, file=sys.stderr)
sys.stderr.flush()
print(f"{passed} passed, {failed} failed, {skipped} skipped")
