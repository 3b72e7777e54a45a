"""Reads the surefire reports of android/maven/*: prints each module's counts, fails on any failure,
error, or a module that ran no test (a build that stopped early leaves no report)."""
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

root = Path(sys.argv[1])
status = 0
# The framework module's Robolectric tests are compiled, not run (android/maven/framework/pom.xml).
compiled = list((root / "framework" / "target" / "test-classes").rglob("*Test.class"))
print(f"kotlin: framework: main code and {len(compiled)} Robolectric test classes compiled against "
      "android-all; NOT RUN here (Robolectric needs androidx.test:monitor, on Google's Maven only)")
if not compiled:
    status = 1
sample = list((root / "sample" / "target" / "classes").rglob("SampleActivity.class"))
print(f"kotlin: sample: {'compiled' if sample else 'NOT COMPILED'} against android-all (the APK is Gradle's)")
if not sample:
    status = 1
for module in ("jvm",):
    reports = sorted((root / module / "target" / "surefire-reports").glob("TEST-*.xml"))
    if not reports:
        print(f"kotlin: {module}: no test report (the build failed before its tests)")
        status = 1
        continue
    tests = failures = skipped = 0
    for report in reports:
        suite = ET.parse(report).getroot()
        tests += int(suite.get("tests", 0))
        failures += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped += int(suite.get("skipped", 0))
        for case in suite.iter("testcase"):
            for bad in list(case.findall("failure")) + list(case.findall("error")):
                print(f"FAIL {case.get('name')}: {bad.get('message')}")
    print(f"kotlin: {module}: {tests} tests, {failures} failed, {skipped} skipped")
    if failures or skipped or tests == 0:
        status = 1
sys.exit(status)
