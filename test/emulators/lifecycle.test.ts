/**
 * The tests' own mesh listens on loopback only and leaves no process behind: the suite's rules
 * (loopback only, nothing left running), checked once here rather than in every test that uses it.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { startMesh } from "../mesh/index.ts";

/** Local addresses of listening TCP sockets, from /proc/net/tcp{,6}: "ADDR:PORT" in hex. */
function listeners(port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  return ["/proc/net/tcp", "/proc/net/tcp6"].flatMap((file) =>
    readFileSync(file, "utf8")
      .split("\n")
      .slice(1)
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f[3] === "0A" && f[1]?.endsWith(`:${hexPort}`))
      .map((f) => f[1] as string),
  );
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("the local mesh", () => {
  it("listens on loopback only and leaves no process when stopped", async () => {
    const mesh = await startMesh();
    const pid = mesh.prometheus?.pid as number;
    expect(alive(pid)).toBe(true);
    const ports = [mesh.kube.port, mesh.traffic.port, mesh.github.port, mesh.prometheus?.port as number];
    for (const port of ports) {
      const addresses = listeners(port);
      expect(addresses.length, `port ${port} listens`).toBeGreaterThan(0);
      // 0100007F is 127.0.0.1 in /proc's little-endian hex.
      for (const a of addresses) expect(a.startsWith("0100007F:"), `port ${port} on ${a}`).toBe(true);
    }
    for (const url of [mesh.kube.url, mesh.github.url, mesh.prometheus?.url])
      expect(new URL(url as string).hostname).toBe("127.0.0.1");
    await mesh.stop();
    expect(alive(pid)).toBe(false);
    for (const port of ports) expect(listeners(port)).toEqual([]);
  });
});
