"""Parse the iOS package's hand-written Swift (everything under ios/Sources but the generated
bindings, and the sample app under ios/Sample) with tree-sitter's Swift grammar and fail on a
syntax error. No Swift toolchain runs on this machine: this catches a broken brace or statement,
not a type error; a build on macOS does the rest (docs/ios.md says what is not verified here)."""

import pathlib
import sys

import tree_sitter
import tree_sitter_swift

root = pathlib.Path(__file__).resolve().parents[1]
parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_swift.language()))
files = [p for p in sorted((root / "ios" / "Sources").rglob("*.swift")) if "Generated" not in p.parts]
files += sorted((root / "ios" / "Sample").rglob("*.swift"))
bad = 0
for path in files:
    tree = parser.parse(path.read_bytes())
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            line, column = node.start_point
            print(f"swift-syntax: {path.relative_to(root)}:{line + 1}:{column + 1}: syntax error", file=sys.stderr)
            bad += 1
            break
        stack.extend(node.children)
if not files:
    print("swift-syntax: no hand-written Swift found", file=sys.stderr)
    sys.exit(1)
print(f"swift-syntax: {len(files)} file(s) parsed, {bad} with errors")
sys.exit(1 if bad else 0)
