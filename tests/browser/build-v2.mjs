// Bundles the protocol-v2 test pages with esbuild: the JS SDK 1.15 page (v2-tests.js) and the React page on
// @langchain/react's useStream (react-app.jsx), and copies their HTML to the folder given as the first argument.
import { build } from "esbuild";
import { copyFile, mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const outdir = process.argv[2];
if (!outdir) {
  console.error("usage: node build-v2.mjs <output folder>");
  process.exit(2);
}
await mkdir(outdir, { recursive: true });
await build({
  entryPoints: [join(here, "v2-page", "v2-tests.js"), join(here, "v2-page", "react-app.jsx")],
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "chrome120",
  jsx: "automatic",
  define: { "process.env.NODE_ENV": '"production"' },
  outdir,
  logLevel: "warning",
});
for (const page of ["index.html", "react.html"]) await copyFile(join(here, "v2-page", page), join(outdir, page));
console.log(`built ${outdir}`);
