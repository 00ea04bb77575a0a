#!/usr/bin/env python3
"""Checks that every target's declared dependencies in Package.swift match what its sources import, exactly:
no module imported without being declared (it would build only by accident, through another target), and no
dependency declared that no source imports. Run by ./dev test and CI before the tests; exits 1 with a list.

`--fix` rewrites the dependency lists in Package.swift to match the imports (local targets first, then products,
alphabetically); review the diff.

Product names are module names for every package this project uses (Logging, NIOCore, PostgresNIO, ...).
`import` lines of the standard library and the platform (Foundation, Glibc, Synchronization, ...) are ignored."""
import json, os, re, subprocess, sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
fix = "--fix" in sys.argv
args = [a for a in sys.argv[1:] if a != "--fix"]
package = args[0] if args else root
dump = json.loads(subprocess.run(["swift", "package", "dump-package"], cwd=package, check=True,
                                 capture_output=True, text=True).stdout)
SYSTEM = {"Foundation", "FoundationEssentials", "Glibc", "Darwin", "Dispatch", "Synchronization", "Testing",
          "XCTest", "FoundationNetworking", "os", "_Concurrency", "Observation", "RegexBuilder"}
local = {t["name"] for t in dump["targets"]}
problems = []
wanted = {}
for t in dump["targets"]:
    if t["type"] == "system":
        continue
    default = {"test": "Tests", "regular": "Sources", "executable": "Sources"}.get(t["type"], "Sources")
    path = os.path.join(package, t.get("path") or os.path.join(default, t["name"]))
    declared = set()
    for d in t["dependencies"]:
        kind, value = next(iter(d.items()))
        declared.add(value[0])
    imported, is_c = set(), True
    for dirpath, _, files in os.walk(path):
        for f in files:
            if f.endswith(".swift"):
                is_c = False
                for line in open(os.path.join(dirpath, f), encoding="utf-8"):
                    m = re.match(r"\s*(?:@testable\s+|@_exported\s+|@preconcurrency\s+)*import\s+(?:struct\s+|enum\s+|class\s+|func\s+)?([A-Za-z_][A-Za-z0-9_]*)", line)
                    if m:
                        imported.add(m.group(1))
    if is_c:
        continue  # C targets: includes are not modules
    imported -= SYSTEM
    imported.discard(t["name"])
    wanted[t["name"]] = (t["type"], imported)
    for m in sorted(imported - declared):
        problems.append(f"{t['name']}: imports {m} but does not declare it")
    for m in sorted(declared - imported):
        problems.append(f"{t['name']}: declares {m} but no source imports it")
def rewrite(path):
    """Replaces each target's `dependencies: [...]` in Package.swift with what its sources import."""
    text = open(path).read()
    packages = dict(re.findall(r'\.product\(name: "(\w+)", package: "([\w.-]+)"\)', text))
    for name, (kind, imported) in wanted.items():
        call = {"test": "testTarget", "executable": "executableTarget"}.get(kind, "target")
        m = re.search(r'\.%s\(\s*name: "%s",\s*dependencies: \[' % (call, re.escape(name)), text)
        if not m:
            if imported:
                print(f"{name}: add a dependencies list by hand")
            continue
        depth, end = 1, m.end()
        while depth:
            depth += {"[": 1, "]": -1}.get(text[end], 0)
            end += 1
        unknown = [i for i in imported if i not in local and i not in packages]
        if unknown:
            print(f"{name}: which package provides {unknown}? declare one use by hand")
            continue
        items = ['"%s"' % i for i in sorted(imported & local, key=str.lower)]
        items += ['.product(name: "%s", package: "%s")' % (i, packages[i]) for i in sorted(imported - local, key=str.lower)]
        body = "\n" + "".join("                %s,\n" % i for i in items) + "            ]"
        text = text[: m.end()] + body + text[end:]
    open(path, "w").write(text)

if problems and fix:
    rewrite(os.path.join(package, "Package.swift"))
    print("rewrote Package.swift's dependency lists; review with git diff")
elif problems:
    print("Package.swift dependencies do not match the imports:\n  " + "\n  ".join(problems))
    sys.exit(1)
else:
    print(f"imports match Package.swift for {len(dump['targets'])} targets")
