"""Print the map of idc_utils: its layers, which layer imports which (module-to-module imports,
imports inside functions counted), import cycles, and functions over the length limit.

    python tools/package_map.py            # the whole picture
    python tools/package_map.py --modules  # also every module's imports
"""

from __future__ import annotations

import argparse

from idc_utils.book import package_map as pm


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--modules", action="store_true", help="list every module's imports")
    args = ap.parse_args()
    graph = pm.import_graph()
    subs = pm.subpackages()
    print(f"{len(pm.modules())} modules in {len(subs)} subpackages: {', '.join(subs)}")
    table = pm.layer_imports(graph)
    order = [*pm.LAYERS, "package"]
    print("\nimports by layer (row imports column; counts of module-to-module imports):")
    print(f"{'':>11}" + "".join(f"{c[:5]:>7}" for c in order))
    for row in order:
        if row in table:
            print(f"{row:>11}" + "".join(f"{table[row].get(c, 0) or '.':>7}" for c in order))
    upward = [(m, t) for m, ts in graph.items() for t in ts if pm.breaks_layers(m, t)]
    print(f"\nimports of a higher or sibling layer: {len(upward)}")
    for m, t in sorted(upward):
        print(f"  {m} -> {t}")
    found = pm.cycles(graph)
    print(f"import cycles: {len(found)}")
    for group in found:
        print("  " + " <-> ".join(group))
    long = pm.long_functions()
    print(f"functions over {pm.MAX_FUNCTION_LINES} lines: {len(long)}")
    for lines, module, name in long:
        print(f"  {lines:4d}  {module}.{name}")
    if args.modules:
        print()
        for m in sorted(graph):
            print(f"{m} -> {', '.join(sorted(graph[m])) or '-'}")
    return 1 if found or long or upward else 0


if __name__ == "__main__":
    raise SystemExit(main())
