// Bundles the official JS SDK (@langchain/langgraph-sdk) for the test page with esbuild and writes the page
// (index.html + sdk-tests.js) to the folder given as the first argument.
import { build } from "esbuild";
import { copyFile, mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const outdir = process.argv[2];
if (!outdir) {
  console.error("usage: node build.mjs <output folder>");
  process.exit(2);
}
await mkdir(outdir, { recursive: true });
await build({
  entryPoints: [join(here, "sdk-page", "sdk-tests.js")],
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "chrome120",
  outfile: join(outdir, "sdk-tests.js"),
  logLevel: "warning",
});
await copyFile(join(here, "sdk-page", "index.html"), join(outdir, "index.html"));
console.log(`built ${outdir}`);
