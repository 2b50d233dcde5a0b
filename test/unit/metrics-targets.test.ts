/**
 * Issue 21: a version's scrape targets against their `up` series. Down (every `up` sample 0) or all
 * gone is no data; one pod replaced while the others are scraped is not.
 */
import { describe, expect, it } from "vitest";
import { targetProblems, targetsOf, upQuery } from "../../src/metrics/targets.ts";

const series = (labels: Record<string, string>, values: number[]) => ({ metric: labels, values });
const t = (instance: string) => ({ job: "kubernetes-pods", instance });

describe("scrape targets", () => {
  it("takes each series' job and instance once, and skips series that name no instance", () => {
    const targets = targetsOf([
      series({ job: "kubernetes-pods", instance: "10.0.0.1:15020", response_code: "200" }, [1]),
      series({ job: "kubernetes-pods", instance: "10.0.0.1:15020", response_code: "503" }, [1]),
      series({ job: "federate", response_code: "200" }, [1]),
    ]);
    expect(targets).toEqual([t("10.0.0.1:15020")]);
  });

  it("asks for the instances' up samples with every regex and PromQL character escaped", () => {
    const query = upQuery([t("10.0.0.1:15020"), { job: "x", instance: 'a.b|c"d' }], 45_000);
    expect(query).toBe('up{instance=~"10\\\\.0\\\\.0\\\\.1:15020|a\\\\.b\\\\|c\\"d"}[45000ms]');
    expect(upQuery([], 45_000)).toBeUndefined();
  });

  it("reads a target whose up samples are all 0 as down, and names the version", () => {
    const up = [
      series({ __name__: "up", ...t("c1") }, [0, 0, 0]),
      series({ __name__: "up", ...t("c2") }, [1, 1, 1]),
      series({ __name__: "up", ...t("s1") }, [1, 0, 1]),
    ];
    const problems = targetProblems({ canary: [t("c1"), t("c2")], stable: [t("s1")] }, up);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/1 of the canary's scrape targets is down .*c1/);
  });

  it("reads a version none of whose targets has an up sample as gone; one replaced pod is not", () => {
    const up = [series({ __name__: "up", ...t("s2") }, [1, 1])];
    const problems = targetProblems({ canary: [t("c1")], stable: [t("s1"), t("s2")] }, up);
    expect(problems).toEqual([expect.stringMatching(/none of the canary's 1 scrape target/)]);
  });

  it("says nothing when Prometheus has no up sample at all (it has not scraped lately)", () => {
    expect(targetProblems({ canary: [t("c1")], stable: [t("s1")] }, [])).toEqual([]);
  });

  it("matches the job too: the same instance under another job is another target", () => {
    const up = [series({ __name__: "up", job: "other", instance: "c1" }, [0, 0])];
    expect(targetProblems({ canary: [t("c1")], stable: [] }, up)).toEqual([
      expect.stringMatching(/none of the canary's/),
    ]);
  });
});
