/**
 * Drops `sourcesContent` from dist/index.js.map after `ncc build --source-map`. Node only needs the
 * mappings and file names to rewrite stack traces (`process.setSourceMapsEnabled`); the embedded
 * sources of every bundled package would multiply the map's weight in every `uses:` download.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";

const mapPath = resolve(import.meta.dirname, "../dist/index.js.map");
const map = JSON.parse(readFileSync(mapPath, "utf8")) as { sourcesContent?: unknown };
delete map.sourcesContent;
writeFileSync(mapPath, JSON.stringify(map));
