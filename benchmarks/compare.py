#!/usr/bin/python3
"""mae.cpp vs PyTorch, measured in one run: the table of benchmarks/README.md.

0. The peer's OpenBLAS kernel (--openblas-coretype, default auto), chosen first: the check and every
   timing of PyTorch run with it. The environment sets OPENBLAS_CORETYPE=Haswell, which halves
   OpenBLAS's sgemm on an AVX-512 CPU, and with it unset OpenBLAS 0.3.21 takes a CPU it does not know
   (the Xeon of model 207, say) for a Prescott and runs at a fifth of its speed. auto times torch.mm
   with OPENBLAS_CORETYPE unset and set to each kernel the CPU's flags allow (Cooperlake, SkylakeX,
   Haswell or Zen) and keeps the fastest; OPENBLAS_L2_SIZE is always removed.
1. PyTorch peer check: pytorch_mae.py --check-fixtures on shared/fixtures/mae_parity (float64, every
   loss / output / gradient within 1e-9 of each tensor's max). The comparison stops if it fails: the
   peer must be the same model before its speed means anything.
2. GEMM peaks: every bench_step process times 2048^3 and 3072^3 sgemms through mae's default backend,
   every pytorch_mae.py process torch.mm at the same sizes, same thread count; each side's peak is the
   fastest call of the whole run (a busy machine lowers the peak only when it is busy the whole time).
3. For each config and mode: bench_step, then pytorch_mae.py, then PyTorch again and bench_step
   again, and so on for --rounds alternations (3, the default); each side keeps its lowest median.
4. Prints the table (ours / PyTorch time ratios, < 1 means mae.cpp is faster) and the asymmetric-
   encoder speedups; --markdown FILE writes it as Markdown, --update-readme replaces the results
   section of benchmarks/README.md.
OpenMP wait policy, the same for both sides (--wait-policy, default auto): on an idle machine the
runtime's default (threads spin a while at each barrier; "unset") is the fastest for both, by 5-30%;
when other work runs on this 2-core machine, spinning threads wait for descheduled partners and both
sides run 3-10x slower and erratically, so OMP_WAIT_POLICY=passive is the only meaningful setting.
auto picks unset when, measured over 1 s at the start (/proc/stat), at least --threads - 0.5 CPUs are
idle, passive otherwise (the load average would still count the previous benchmark for a minute).

Usage: compare.py --build-dir DIR [--config a,b] [--mode a,b] [--threads 2] [--budget S] [--min-reps N]
                  [--rounds 3] [--wait-policy auto|passive|active|unset] [--openblas-coretype auto|unset|NAME]
                  [--fixtures DIR] [--skip-check]
                  [--markdown FILE] [--update-readme] [--json-out FILE]
Normally run through run_all.sh, which builds first.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PYTHON = "/usr/bin/python3"
CONFIGS = ["tiny32", "fmnist28", "base224"]
MODES = ["train", "train_nomask", "infer"]
TORCH_ENV_DROP = ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"]
OPENBLAS_CORETYPE = None  # the peer's OPENBLAS_CORETYPE (None: unset), chosen in main()


def log(msg):
    print(msg, file=sys.stderr, flush=True)


WAIT_POLICY = "unset"  # set from --wait-policy in main()


def ours_env():
    env = dict(os.environ)
    if WAIT_POLICY == "unset":
        env.pop("OMP_WAIT_POLICY", None)
    else:
        env["OMP_WAIT_POLICY"] = WAIT_POLICY
    return env


def torch_env():
    env = ours_env()
    for k in TORCH_ENV_DROP:
        env.pop(k, None)
    if OPENBLAS_CORETYPE:
        env["OPENBLAS_CORETYPE"] = OPENBLAS_CORETYPE
    return env


def cpu_info():
    """The first CPU's fields of /proc/cpuinfo ("model name", "flags", ...); empty where unreadable."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the end of the first CPU's block
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def coretype_candidates():
    """OpenBLAS kernels this CPU can run, best first; None stands for OPENBLAS_CORETYPE unset."""
    info = cpu_info()
    flags = set(info.get("flags", "").split())
    out = [None]
    if {"avx512f", "avx512bw", "avx512vl"} <= flags:
        if "avx512_bf16" in flags:
            out.append("Cooperlake")
        out.append("SkylakeX")
    if {"avx2", "fma"} <= flags:
        out.append("Zen" if info.get("vendor_id") == "AuthenticAMD" else "Haswell")
    return out


def run_json(cmd, env=None):
    """Runs cmd, returns its JSON lines (stdout); stderr passes through. Raises on failure."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, env=env, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {p.returncode}\n{p.stdout}")
    out = []
    for line in p.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def load_average():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def idle_cpus(seconds):
    """CPUs idle (idle + iowait) over `seconds`, from /proc/stat; None where it cannot be read."""
    def sample():
        with open("/proc/stat") as f:
            fields = f.readline().split()
        ticks = [int(x) for x in fields[1:9]]  # user nice system idle iowait irq softirq steal
        return ticks[3] + ticks[4], sum(ticks)
    try:
        idle0, total0 = sample()
        time.sleep(seconds)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return (idle1 - idle0) / (total1 - total0) * (os.cpu_count() or 1)


def cpu_model():
    """The CPU's name with its family and model: VMs often show only "Intel(R) Xeon(R) Processor"."""
    info = cpu_info()
    name = info.get("model name", "unknown")
    if "cpu family" in info and "model" in info:
        name += f" (family {info['cpu family']} model {info['model']})"
    return name


def fmt_table(rows, header, left=2):
    """Fixed-width text table; the first `left` columns left-aligned, the rest right-aligned."""
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]

    def line(cells):
        return " | ".join(str(c).ljust(w) if i < left else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header), "-+-".join("-" * w for w in widths)] + [line(r) for r in rows])


def md_table(rows, header, left=2):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i < left else "---:" for i in range(len(header))) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build-bench"))
    ap.add_argument("--config", default=",".join(CONFIGS))
    ap.add_argument("--mode", default=",".join(MODES))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget", type=float, default=1.0, help="seconds of measured steps per row and side")
    ap.add_argument("--min-reps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3, help="alternations per row (best median per side)")
    ap.add_argument("--wait-policy", choices=["auto", "passive", "active", "unset"], default="auto",
                    help="OMP_WAIT_POLICY for both sides; unset: the OpenMP runtime's default (spin, then "
                         "sleep), fastest when idle; passive: robust when the machine is busy; auto (default): "
                         "unset if at least threads - 0.5 CPUs are idle over 1 s at the start, else passive")
    ap.add_argument("--openblas-coretype", default="auto", metavar="auto|unset|NAME",
                    help="the peer's OPENBLAS_CORETYPE: auto (default) times torch.mm unset and with each kernel "
                         "the CPU's flags allow and keeps the fastest; unset; or a core name (SkylakeX, ...)")
    ap.add_argument("--fixtures", default=os.environ.get("MAE_FIXTURES",
                                                         os.path.join(REPO, "..", "shared", "fixtures")))
    ap.add_argument("--skip-check", action="store_true", help="skip the PyTorch fixture check")
    ap.add_argument("--markdown", metavar="FILE", help="also write the tables as Markdown")
    ap.add_argument("--update-readme", action="store_true", help="replace the results section of README.md")
    ap.add_argument("--json-out", metavar="FILE", help="write every JSON line of both sides to FILE")
    args = ap.parse_args()
    global WAIT_POLICY
    WAIT_POLICY = args.wait_policy
    wait_note = ""
    if WAIT_POLICY == "auto":
        idle = idle_cpus(1.0)
        WAIT_POLICY = "unset" if idle is None or idle >= args.threads - 0.5 else "passive"
        wait_note = " (auto: %s CPUs idle at the start)" % ("?" if idle is None else f"{idle:.1f}")
    log(f"compare: OMP_WAIT_POLICY {WAIT_POLICY}{wait_note} for both sides")
    global OPENBLAS_CORETYPE
    OPENBLAS_CORETYPE = None if args.openblas_coretype in ("auto", "unset") else args.openblas_coretype

    configs = [c for c in args.config.split(",") if c]
    modes = [m for m in args.mode.split(",") if m]
    for c in configs:
        if c not in CONFIGS:
            ap.error(f"unknown config '{c}'")
    for m in modes:
        if m not in MODES:
            ap.error(f"unknown mode '{m}'")
    bench_step = os.path.join(args.build_dir, "benchmarks", "bench_step")
    peer = os.path.join(HERE, "pytorch_mae.py")
    if not os.access(bench_step, os.X_OK):
        ap.error(f"{bench_step} not found: build it first (run_all.sh does)")
    started = time.time()
    load_before = load_average()
    all_lines = []

    # 0. the peer's OpenBLAS kernel (its fixture check and its timings run with the same one)
    common = ["--json", "--threads", str(args.threads)]
    log(f"[0/3] PyTorch's OpenBLAS kernel (--openblas-coretype {args.openblas_coretype})")
    candidates = coretype_candidates() if args.openblas_coretype == "auto" else [OPENBLAS_CORETYPE]
    tried = []  # (GFLOP/s, core type, the peak line)
    for ct in candidates:
        OPENBLAS_CORETYPE = ct
        line = [l for l in run_json([PYTHON, peer, "--peak-only"] + common, env=torch_env())
                if l.get("kind") == "peak"][0]
        all_lines.append(line)
        tried.append((line["gflops"], ct, line))
        log(f"      PyTorch, OPENBLAS_CORETYPE {ct or 'unset'}: {line['gflops']:.1f} GFLOP/s")
    _, OPENBLAS_CORETYPE, torch_peak_line = max(tried, key=lambda t: t[0])
    coretype_note = "" if len(tried) == 1 else " (auto, torch.mm peak: " + ", ".join(
        f"{ct or 'unset'} {g:.0f}" for g, ct, _ in tried) + " GFLOP/s)"
    log(f"compare: PyTorch runs with OPENBLAS_CORETYPE {OPENBLAS_CORETYPE or 'unset'}{coretype_note}")

    # 1. the peer must reproduce the official fixtures
    parity = os.path.normpath(os.path.join(args.fixtures, "mae_parity"))
    fixture_note = "not checked (--skip-check)"
    if not args.skip_check:
        log(f"[1/3] PyTorch peer vs {parity} (float64)")
        lines = run_json([PYTHON, peer, "--check-fixtures", parity, "--json"], env=torch_env())
        all_lines += lines
        for l in lines:
            log(f"      {l['fixture']:10s} {'OK' if l['ok'] else 'FAIL'}  worst {l['worst_tensor']} {l['worst_rel_err']:.2g}")
        if not lines or not all(l["ok"] for l in lines):
            log("compare: the PyTorch peer does not reproduce the fixtures; not comparing speed")
            return 1
        worst = max(lines, key=lambda l: l["worst_rel_err"])
        fixture_note = (f"{len(lines)} fixtures reproduced in float64, worst {worst['worst_rel_err']:.1g} of a tensor's "
                        f"max ({worst['fixture']} {worst['worst_tensor']}; tolerance 1e-9)")

    # 2. GEMM peaks: measured again by every process of step 3; the best of the run counts
    log(f"[2/3] GEMM peaks ({args.threads} threads)")
    peaks = {"ours": [], "torch": []}
    ours_peak_line = [l for l in run_json([bench_step, "--peak-only"] + common, env=ours_env())
                      if l.get("kind") == "peak"][0]
    all_lines.append(ours_peak_line)
    peaks["ours"].append(ours_peak_line["gflops"])
    peaks["torch"].append(torch_peak_line["gflops"])
    log(f"      mae.cpp ({ours_peak_line['backend']}) {peaks['ours'][0]:.1f} GFLOP/s, "
        f"PyTorch (OpenBLAS) {peaks['torch'][0]:.1f} GFLOP/s")

    # 3. steps, alternately
    log(f"[3/3] steps: {len(configs)} configs x {len(modes)} modes, {args.rounds} round(s), budget {args.budget} s, "
        f">= {args.min_reps} reps per side")
    results = {}  # (impl, config, mode) -> JSON line
    for c in configs:
        for m in modes:
            for r in range(args.rounds):
                order = ["ours", "torch"] if r % 2 == 0 else ["torch", "ours"]
                for who in order:
                    sel = ["--config", c, "--mode", m, "--budget", str(args.budget), "--min-reps", str(args.min_reps)]
                    if who == "ours":
                        cmd, env = [bench_step] + sel + common, ours_env()
                    else:
                        cmd, env = [PYTHON, peer] + sel + common, torch_env()
                    load = load_average().split()[0]
                    lines = run_json(cmd, env=env)
                    peaks[who] += [l["gflops"] for l in lines if l.get("kind") == "peak"]
                    all_lines += [l for l in lines if l.get("kind") == "peak"]
                    line = [l for l in lines if l.get("kind") == "step"][0]
                    line["load_1min"] = float(load) if load != "?" else -1.0
                    all_lines.append(line)
                    key = (who, c, m)
                    if key not in results or line["median_ms"] < results[key]["median_ms"]:
                        results[key] = line
                    log(f"      {c:8s} {m:12s} {'mae.cpp' if who == 'ours' else 'PyTorch':7s} "
                        f"{line['median_ms']:10.1f} ms  (load before {load})")

    # 4. tables; % peak against each side's best sgemm of the run
    ours_peak, torch_peak = max(peaks["ours"]), max(peaks["torch"])
    for (who, _, _), line in results.items():
        line["peak_gflops"] = ours_peak if who == "ours" else torch_peak
        line["pct_peak"] = 100.0 * line["gflops"] / line["peak_gflops"]
    header = ["config", "mode", "batch", "mae.cpp ms", "PyTorch ms", "ours/PyTorch", "mae.cpp img/s", "PyTorch img/s",
              "GFLOP/step", "mae.cpp GFLOP/s", "% peak", "PyTorch GFLOP/s", "% peak", "mae.cpp RSS MB",
              "PyTorch RSS MB", "load"]
    rows = []
    for c in configs:
        for m in modes:
            o, t = results[("ours", c, m)], results[("torch", c, m)]
            rows.append([c, m, o["batch"], f"{o['median_ms']:.1f}", f"{t['median_ms']:.1f}",
                         f"{o['median_ms'] / t['median_ms']:.2f}", f"{o['images_per_s']:.1f}", f"{t['images_per_s']:.1f}",
                         f"{o['model_gflop']:.1f}", f"{o['gflops']:.1f}", f"{o['pct_peak']:.0f}", f"{t['gflops']:.1f}",
                         f"{t['pct_peak']:.0f}", f"{o['peak_rss_mb']:.0f}", f"{t['peak_rss_mb']:.0f}",
                         f"{o['load_1min']:.1f}/{t['load_1min']:.1f}"])
    sp_header = ["config", "mae.cpp speedup", "PyTorch speedup", "FLOP ratio"]
    sp_rows = []
    for c in configs:
        if ("ours", c, "train") in results and ("ours", c, "train_nomask") in results:
            so = results[("ours", c, "train_nomask")]["median_ms"] / results[("ours", c, "train")]["median_ms"]
            st = results[("torch", c, "train_nomask")]["median_ms"] / results[("torch", c, "train")]["median_ms"]
            ratio = results[("ours", c, "train_nomask")]["model_gflop"] / results[("ours", c, "train")]["model_gflop"]
            sp_rows.append([c, f"{so:.2f}x", f"{st:.2f}x", f"{ratio:.2f}x"])

    load_after = load_average()
    minutes = (time.time() - started) / 60
    date = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    notes = [
        f"{date}, cpu {cpu_model()}, {os.cpu_count()} cores, {args.threads} threads per side, float32, "
        f"load average {load_before} before / {load_after} after, {minutes:.1f} min; OMP_WAIT_POLICY "
        f"{WAIT_POLICY}{wait_note} for both sides.",
        f"mae.cpp: backend {ours_peak_line['backend']}; GEMM peak {ours_peak:.1f} GFLOP/s (fastest 2048^3 or 3072^3 sgemm of the run). "
        f"PyTorch: {torch_peak_line['backend'].split(',')[0]}, OpenBLAS with OPENBLAS_CORETYPE "
        f"{OPENBLAS_CORETYPE or 'unset'}{coretype_note} and OPENBLAS_L2_SIZE unset (this machine sets "
        f"OPENBLAS_CORETYPE=Haswell); GEMM peak {torch_peak:.1f} GFLOP/s "
        f"(fastest torch.mm 2048^3 or 3072^3 of the run). Each side's % peak is of its own peak.",
        "ms: median step time (>= %d measured steps after 1 warm-up, %g s budget%s); ours/PyTorch < 1: mae.cpp "
        "faster. GFLOP/s: GEMM FLOPs of the model step (2mnk, counted from the config, the same count for both) per "
        "second. RSS: the process's peak resident memory during that row (PyTorch's includes the ~%.0f MB "
        "resident before its model is built: interpreter, libtorch, inputs)." % (args.min_reps, args.budget, ", best of %d alternations" % args.rounds
                                         if args.rounds > 1 else "",
                                         results[("torch", configs[0], modes[0])].get("base_rss_mb", 0)),
        f"PyTorch peer: {fixture_note}.",
        "Speedup: train_nomask ms / train ms (encoder on all patches vs the 25% kept), next to the FLOP ratio.",
        "load: 1-minute load average when each side's row started (mae.cpp/PyTorch). The machine has 2 cores "
        "shared with other work: above ~1 the numbers are noisy, so compare rows of one run, not across runs. "
        "With OMP_WAIT_POLICY unset, threads spin at every barrier and a descheduled one stalls its partner: "
        "under load both sides then run 3-10x slower and vary run to run (hence passive when busy); passive "
        "costs a wake-up per parallel region instead (30-140 us on this VM).",
    ]
    text = fmt_table(rows, header)
    print()
    print(text)
    if sp_rows:
        print()
        print("asymmetric encoder: train_nomask ms / train ms")
        print(fmt_table(sp_rows, sp_header, left=1))
    print()
    for n in notes:
        print("* " + n)

    md = md_table(rows, header) + "\n\n" + (md_table(sp_rows, sp_header, left=1) + "\n\n" if sp_rows else "") + \
        "\n".join("* " + n for n in notes) + "\n"
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(md)
    if args.json_out:
        with open(args.json_out, "w") as f:
            for l in all_lines:
                f.write(json.dumps(l) + "\n")
    if args.update_readme:
        path = os.path.join(HERE, "README.md")
        begin, end = "<!-- results:begin -->", "<!-- results:end -->"
        with open(path) as f:
            readme = f.read()
        if begin in readme and end in readme:
            head, rest = readme.split(begin, 1)
            _, tail = rest.split(end, 1)
            with open(path, "w") as f:
                f.write(head + begin + "\n" + md + end + tail)
            log(f"compare: updated {path}")
        else:
            log(f"compare: {path} has no {begin} ... {end} section; not updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
