// minimrcnn explain: draws one recorded forward pass from the JSON in #explain-data.
//
// Plain JavaScript, no library, no network. Read it like the Python library:
//   1. decoding the data      (base64 float32 arrays -> typed arrays)
//   2. the recomputed parts   (NMS and thresholds, bit for bit like minimrcnn.ops.nms,
//                              RoIAlign's bilinear weights like ops/roi_align.py)
//   3. drawing                (the pipeline strip, the panels, the scene, a detection's detail)
// Everything else on the page is a number of the recorded pass, shown as it was.
"use strict";

const DATA = JSON.parse(document.getElementById("explain-data").textContent);
const META = DATA.meta;
const f32 = Math.fround;   // float32 rounding: every float32 operation below is f32(a op b)
const SVGNS = "http://www.w3.org/2000/svg";

// ----------------------------------------------------------------------------- 1. decoding
function decode(blob) {
  // {dtype, shape, b64} -> typed array (little-endian bytes), with .shape attached
  const bytes = Uint8Array.from(atob(blob.b64), (c) => c.charCodeAt(0));
  const Type = { float32: Float32Array, int32: Int32Array, uint8: Uint8Array }[blob.dtype];
  const array = new Type(bytes.buffer, 0, bytes.length / Type.BYTES_PER_ELEMENT);
  array.shape = blob.shape;
  return array;
}

function rows(array, width) {
  // flat [R * width] -> R arrays of width numbers
  const out = [];
  for (let i = 0; i < array.length; i += width) out.push(Array.from(array.subarray(i, i + width)));
  return out;
}

const BEFORE_NMS = rows(decode(DATA.proposals.before_nms), 4);        // RPN boxes before NMS
const BEFORE_SCORES = Array.from(decode(DATA.proposals.scores));
const BEFORE_LEVELS = Array.from(decode(DATA.proposals.levels));
const CLASS_PROBS = decode(DATA.proposals.class_probs);                // [R, K]
const CAND = {
  boxes: rows(decode(DATA.candidates.boxes), 4),
  scores: Array.from(decode(DATA.candidates.scores)),
  labels: Array.from(decode(DATA.candidates.labels)),
  proposal: Array.from(decode(DATA.candidates.proposal)),
};
const RECORDED = new Map(DATA.detections.map((d, i) => [d.candidate, i]));   // candidate -> detection
const GT = DATA.ground_truth;
const GT_BOX_IOU = GT ? decode(GT.box_iou) : null;                     // [candidates, G]

// ----------------------------------------------------------------------------- 2. recomputed parts
function nms(boxes, scores, iouThreshold) {
  // Greedy NMS exactly as minimrcnn.ops.nms.nms_reference, in float32 arithmetic:
  // visit by decreasing score (ties: lower index first), keep a box unless a kept box
  // overlaps it with IoU > threshold (compared in float64; NaN never suppresses).
  const order = scores.map((_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
  const areas = boxes.map((b) => f32(f32(b[2] - b[0]) * f32(b[3] - b[1])));
  const suppressed = new Uint8Array(boxes.length);
  const keep = [];
  for (let p = 0; p < order.length; p++) {
    const i = order[p];
    if (suppressed[i]) continue;
    keep.push(i);
    const a = boxes[i];
    for (let q = p + 1; q < order.length; q++) {
      const j = order[q];
      if (suppressed[j]) continue;
      const b = boxes[j];
      const w = Math.max(f32(Math.min(a[2], b[2]) - Math.max(a[0], b[0])), 0);
      const h = Math.max(f32(Math.min(a[3], b[3]) - Math.max(a[1], b[1])), 0);
      const inter = f32(w * h);
      const iou = f32(inter / f32(f32(areas[i] + areas[j]) - inter));
      if (iou > iouThreshold) suppressed[j] = 1;
    }
  }
  return keep;
}

function batchedNms(boxes, scores, idxs, iouThreshold) {
  // NMS per category, with torchvision's (and minimrcnn's) two paths:
  // up to 1000 boxes, shift each category by idx * (max coordinate + 1) in float32 and run
  // one NMS; above, one NMS per category, kept indices sorted by decreasing score.
  if (boxes.length === 0) return [];
  if (boxes.length * 4 > 4000) {
    const keepMask = new Uint8Array(boxes.length);
    const classes = Array.from(new Set(idxs)).sort((a, b) => a - b);
    for (const c of classes) {
      const members = idxs.map((v, i) => (v === c ? i : -1)).filter((i) => i >= 0);
      const kept = nms(members.map((i) => boxes[i]), members.map((i) => scores[i]), iouThreshold);
      for (const k of kept) keepMask[members[k]] = 1;
    }
    const keep = [];
    keepMask.forEach((m, i) => { if (m) keep.push(i); });
    return keep.sort((a, b) => scores[b] - scores[a] || a - b);
  }
  let maxCoordinate = -Infinity;
  for (const b of boxes) for (const v of b) maxCoordinate = Math.max(maxCoordinate, v);
  const step = f32(maxCoordinate + 1);
  const shifted = boxes.map((b, i) => {
    const offset = f32(f32(idxs[i]) * step);
    return b.map((v) => f32(v + offset));
  });
  return nms(shifted, scores, iouThreshold);
}

function selectDetections(scoreThreshold, iouThreshold, topN) {
  // Candidates scoring > threshold (compared in float32, as NumPy compares a float32 array
  // with a Python float) whose proposal survives the top-n, then per-class NMS, then the
  // first detections_per_img. Returns candidate indices by decreasing score.
  const thr = f32(scoreThreshold);
  const members = [];
  for (let c = 0; c < CAND.scores.length; c++) {
    if (CAND.scores[c] > thr && CAND.proposal[c] < topN) members.push(c);
  }
  const keep = batchedNms(members.map((c) => CAND.boxes[c]), members.map((c) => CAND.scores[c]),
    members.map((c) => CAND.labels[c]), iouThreshold);
  return keep.slice(0, META.detections_per_img).map((k) => members[k]);
}

let rpnKeep = null;   // the RPN's NMS does not depend on any slider: computed once

function selectProposals(topN) {
  // The RPN's last step: NMS per level at rpn_nms_thresh, then the first top-n.
  if (rpnKeep === null) rpnKeep = batchedNms(BEFORE_NMS, BEFORE_SCORES, BEFORE_LEVELS, META.rpn_nms_thresh);
  return rpnKeep.slice(0, topN);
}

function bilinear(height, width, y, x) {
  // The 4 neighbours and weights of point (y, x) on an H x W map, as ops/roi_align.py's
  // bilinear_interpolate, in float32: null outside [-1, H] x [-1, W].
  if (!(y >= -1 && y <= height && x >= -1 && x <= width)) return null;
  y = Math.max(y, 0);
  x = Math.max(x, 0);
  let yLow = Math.floor(y), xLow = Math.floor(x), yHigh, xHigh;
  if (yLow >= height - 1) { yLow = yHigh = height - 1; y = yLow; } else { yHigh = yLow + 1; }
  if (xLow >= width - 1) { xLow = xHigh = width - 1; x = xLow; } else { xHigh = xLow + 1; }
  const ly = f32(y - yLow), lx = f32(x - xLow);
  const hy = f32(1 - ly), hx = f32(1 - lx);
  return { yLow, yHigh, xLow, xHigh, w: [f32(hy * hx), f32(hy * lx), f32(ly * hx), f32(ly * lx)] };
}

function matchGroundTruth(visible, iouOf, threshold) {
  // Greedy matching, by decreasing score: each detection takes the unmatched GT of its
  // class with the highest IoU >= threshold. Returns {tp: Map candidate -> true/false, or
  // null when its IoU is unknown (a mask the recorded pass did not compute), missed: GT set}.
  const used = new Set();
  const tp = new Map();
  for (const c of visible) {
    if (GT.labels.length && iouOf(c, 0) === null) { tp.set(c, null); continue; }
    let best = -1, bestIou = threshold;
    for (let g = 0; g < GT.labels.length; g++) {
      if (used.has(g) || GT.labels[g] !== CAND.labels[c]) continue;
      const iou = iouOf(c, g);
      if (iou >= bestIou) { best = g; bestIou = iou; }
    }
    if (best >= 0) used.add(best);
    tp.set(c, best >= 0);
  }
  const missed = new Set(GT.labels.map((_, g) => g).filter((g) => !used.has(g)));
  return { tp, missed };
}

const boxIou = (c, g) => GT_BOX_IOU[c * GT.labels.length + g];
const maskIou = (c, g) => (RECORDED.has(c) && GT.mask_iou ? GT.mask_iou[RECORDED.get(c)][g] : null);

// ----------------------------------------------------------------------------- 3. drawing helpers
function el(tag, attrs = {}, ...children) {
  const svgTags = ["svg", "rect", "circle", "line", "g", "image", "text", "polyline", "title"];
  const node = svgTags.includes(tag) ? document.createElementNS(SVGNS, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

const fmt = (v, digits = 4) => (Number.isInteger(v) ? String(v) : Number(v).toPrecision(digits));
const className = (label) => META.class_names[label] || `class ${label}`;
const colour = (label) => META.palette[label % META.palette.length];   // viz/draw.py's, as the pasted masks

function colormap(t) {
  // viridis-like: 5 stops, linear in between; t in [0, 1]
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const s = Math.min(Math.max(t, 0), 1) * (stops.length - 1);
  const i = Math.min(Math.floor(s), stops.length - 2), u = s - i;
  return stops[i].map((v, k) => Math.round(v + u * (stops[i + 1][k] - v)));
}

function heatmapCanvas(values, height, width, lo, hi, cell = 1) {
  // float values [H * W] -> a canvas, colour-mapped between lo and hi
  const canvas = el("canvas", { width: width, height: height });
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(width, height);
  const span = hi > lo ? hi - lo : 1;
  for (let i = 0; i < height * width; i++) {
    const [r, g, b] = colormap((values[i] - lo) / span);
    image.data.set([r, g, b, 255], 4 * i);
  }
  ctx.putImageData(image, 0, 0);
  canvas.style.width = `${width * cell}px`;
  canvas.style.height = `${height * cell}px`;
  return canvas;
}

function range(values) {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  return [lo, hi];
}

function svgBox(b, attrs) {
  return el("rect", { x: b[0], y: b[1], width: Math.max(b[2] - b[0], 0), height: Math.max(b[3] - b[1], 0), ...attrs });
}

function table(headers, body, attrs = {}) {
  return el("table", attrs, el("tr", {}, ...headers.map((h) => el("th", {}, h))), ...body);
}

// ----------------------------------------------------------------------------- 3. the page
const [IMG_H, IMG_W] = META.resized_size;
const DISPLAY_SCALE = Math.min(4, 720 / IMG_W);             // screen pixels per image pixel
const state = {
  score: META.score_threshold, iou: META.box_nms_thresh, topN: META.rpn_post_nms_top_n,
  selected: null, visible: [], proposals: [], anchors: [],
};
const scene = document.getElementById("scene");
const layers = {};

function buildScene() {
  scene.setAttribute("viewBox", `0 0 ${IMG_W} ${IMG_H}`);
  scene.setAttribute("width", IMG_W * DISPLAY_SCALE);
  scene.setAttribute("height", IMG_H * DISPLAY_SCALE);
  scene.append(el("image", { href: DATA.image.src, x: 0, y: 0, width: IMG_W, height: IMG_H }));
  for (const name of ["masks", "groundTruth", "proposals", "anchors", "detections"]) {
    layers[name] = el("g", { "data-layer": name });
    scene.append(layers[name]);
  }
}

function drawScene() {
  const sx = IMG_W / META.original_size[1], sy = IMG_H / META.original_size[0];
  const show = (name) => document.querySelector(`[data-toggle="${name}"]`).checked;
  for (const g of Object.values(layers)) g.replaceChildren();
  if (show("masks")) {
    for (const c of state.visible) {
      const d = RECORDED.has(c) ? DATA.detections[RECORDED.get(c)] : null;
      if (d && d.pasted) {
        layers.masks.append(el("image", { href: d.pasted.png, x: d.pasted.x * sx, y: d.pasted.y * sy,
          width: d.pasted.w * sx, height: d.pasted.h * sy, opacity: 0.55, preserveAspectRatio: "none" }));
      }
    }
  }
  if (GT && show("ground-truth")) {
    const missed = matchGroundTruth(state.visible, boxIou, 0.5).missed;
    GT.boxes_resized.forEach((b, g) => layers.groundTruth.append(svgBox(b, {
      class: missed.has(g) ? "gt missed" : "gt", "data-role": missed.has(g) ? "missed" : "ground-truth",
      "stroke-width": 1.5 / DISPLAY_SCALE })));
  }
  if (show("proposals")) {
    for (const i of state.proposals) {
      layers.proposals.append(svgBox(BEFORE_NMS[i], { class: "proposal", "data-role": "proposal",
        "data-index": i, "stroke-width": 1 / DISPLAY_SCALE, onclick: () => selectProposal(i) }));
    }
  }
  for (const a of state.anchors) {
    layers.anchors.append(svgBox(a, { class: "anchor", "stroke-width": 1.5 / DISPLAY_SCALE }));
  }
  for (const c of state.visible) {
    const box = CAND.boxes[c];
    const shape = svgBox(box, { class: c === state.selected ? "detection selected" : "detection",
      stroke: colour(CAND.labels[c]), "stroke-width": 2 / DISPLAY_SCALE, "data-role": "detection",
      "data-candidate": c, onclick: () => selectDetection(c) });
    shape.append(el("title", {}, `${className(CAND.labels[c])} ${fmt(CAND.scores[c], 3)}`));
    layers.detections.append(shape);
  }
}

function recompute() {
  state.proposals = selectProposals(state.topN);
  state.visible = selectDetections(state.score, state.iou, state.topN);
  document.querySelector('[data-role="detection-count"]').textContent = state.visible.length;
  document.querySelector('[data-role="proposal-count"]').textContent = state.proposals.length;
  document.querySelector('[data-role="score-threshold-value"]').textContent = fmt(state.score, 3);
  document.querySelector('[data-role="nms-iou-value"]').textContent = fmt(state.iou, 3);
  document.querySelector('[data-role="rpn-post-nms-top-n-value"]').textContent = state.topN;
  drawScene();
  drawDetectionsTable();
}

function drawDetectionsTable() {
  const headers = ["#", "class", "score", "from"];
  let marks = null;
  if (GT) {
    marks = [];
    for (const [kind, iouOf] of [["box", boxIou], ["mask", maskIou]]) {
      for (const t of [0.5, 0.75]) {
        headers.push(`${kind} @${t}`);
        marks.push(matchGroundTruth(state.visible, iouOf, t).tp);
      }
    }
  }
  const body = state.visible.map((c, i) => {
    const cells = [i, className(CAND.labels[c]), fmt(CAND.scores[c], 3),
      RECORDED.has(c) ? "recorded pass" : "recomputed"];
    if (marks) for (const m of marks) cells.push(m.get(c) === null ? "n/a" : (m.get(c) ? "TP" : "FP"));
    return el("tr", { "data-role": "detection-row", "data-candidate": c, onclick: () => selectDetection(c) },
      ...cells.map((v) => el("td", {}, String(v))));
  });
  const parts = [table(headers, body, { class: "detections" })];
  if (GT) {
    const missed = matchGroundTruth(state.visible, boxIou, 0.5).missed;
    parts.push(el("p", { "data-role": "missed-count" },
      `${missed.size} of ${GT.labels.length} ground-truth objects missed at box IoU 0.5` +
      (missed.size ? `: ${[...missed].map((g) => className(GT.labels[g])).join(", ")} (dashed).` : ".")));
  }
  document.getElementById("detections-table").replaceChildren(...parts);
}

// ----------------------------------------------------------------------------- a detection's detail
function levelFormula(box, levelIndex, role) {
  // k = floor(k0 + log2(sqrt(w h) / s0)), clamped to [k_min, k_max]; the level itself is
  // the pooler's (recorded side), the intermediate numbers are evaluated here for reading.
  const w = box[2] - box[0], h = box[3] - box[1];
  const side = Math.sqrt(w * h);
  const raw = META.canonical_level + Math.log2(side / META.canonical_scale);
  const k = levelIndex + META.k_min;
  return el("p", { "data-role": role, "data-value": levelIndex },
    `w = ${fmt(w)}, h = ${fmt(h)}, sqrt(wh) = ${fmt(side)}; k = floor(${META.canonical_level} + ` +
    `log2(${fmt(side)} / ${META.canonical_scale})) = floor(${fmt(raw)}) -> clamped to ` +
    `[${META.k_min}, ${META.k_max}]: `, el("strong", {}, `P${k}`),
    ` (feature '${DATA.levels[levelIndex].name}', scale ${META.pooler_scales[levelIndex]})`);
}

function roiGrid(grid, box, title, kind) {
  // The RoIAlign grid on its level's feature map: bins (hover one) and their sample points.
  const level = DATA.levels[grid.level];
  const [, H, W] = level.shape;
  const maps = decode(level.maps);
  const channelPick = el("select", { "data-role": "grid-channel" },
    ...level.channels.map((ch, i) => el("option", { value: i }, `channel ${ch}`)));
  const x1 = box[0] * grid.scale, y1 = box[1] * grid.scale;
  const [PH, PW] = grid.output_size;
  const pad = 1.5;
  const vx = Math.max(Math.floor(x1 - pad), -0.5), vy = Math.max(Math.floor(y1 - pad), -0.5);
  const vw = Math.min(x1 + PW * grid.bin_w + pad, W - 0.5) - vx, vh = Math.min(y1 + PH * grid.bin_h + pad, H - 0.5) - vy;
  const size = 300;
  const svg = el("svg", { viewBox: `${vx} ${vy} ${vw} ${vh}`, width: size, height: size * vh / vw, class: "grid" });
  const mapImage = el("image", { x: -0.5, y: -0.5, width: W, height: H, preserveAspectRatio: "none", class: "pixelated" });
  const paint = () => {
    const i = Number(channelPick.value);
    const values = maps.subarray(i * H * W, (i + 1) * H * W);
    const [lo, hi] = range(values);
    mapImage.setAttribute("href", heatmapCanvas(values, H, W, lo, hi).toDataURL());
  };
  channelPick.addEventListener("change", paint);
  paint();
  svg.append(mapImage);
  const weights = el("div", { "data-role": "bin-weights", class: "weights" }, "Hover a bin to see its samples.");
  const stroke = Math.max(vw, vh) / size;
  for (let ph = 0; ph < PH; ph++) {
    for (let pw = 0; pw < PW; pw++) {
      const bin = el("rect", { x: x1 + pw * grid.bin_w, y: y1 + ph * grid.bin_h, width: grid.bin_w, height: grid.bin_h,
        class: "bin", "stroke-width": stroke, "data-role": "roi-bin", "data-grid": kind, "data-ph": ph, "data-pw": pw,
        onmouseenter: () => showBin(weights, grid, H, W, ph, pw) });
      svg.append(bin);
    }
  }
  for (let ph = 0; ph < PH; ph++) for (const y of grid.ys[ph]) for (let pw = 0; pw < PW; pw++) for (const x of grid.xs[pw]) {
    svg.append(el("circle", { cx: x, cy: y, r: 1.5 * stroke, class: "sample" }));
  }
  return el("div", { class: "grid-block", "data-grid": kind },
    el("h4", {}, title), el("p", {}, `${PH} x ${PW} bins of ${fmt(grid.bin_h)} x ${fmt(grid.bin_w)} cells, `,
      `${grid.gh} x ${grid.gw} samples each, on ${level.label} (${H} x ${W}) `, channelPick), svg, weights);
}

function showBin(target, grid, H, W, ph, pw) {
  // The bin's samples: their four neighbours and bilinear weights (ops/roi_align.py's formula)
  const body = [];
  for (const y of grid.ys[ph]) {
    for (const x of grid.xs[pw]) {
      const nb = bilinear(H, W, y, x);
      const cells = nb ? [`(${nb.yLow}, ${nb.xLow}) (${nb.yLow}, ${nb.xHigh}) (${nb.yHigh}, ${nb.xLow}) (${nb.yHigh}, ${nb.xHigh})`,
        nb.w.map((v) => fmt(v, 6)).join(", ")] : ["outside: contributes 0", "-"];
      body.push(el("tr", { "data-role": "sample-weights", "data-y": y, "data-x": x,
        "data-neighbours": nb ? [nb.yLow, nb.yHigh, nb.xLow, nb.xHigh].join(",") : "",
        "data-weights": nb ? nb.w.join(",") : "" },
      el("td", {}, `(${fmt(y, 6)}, ${fmt(x, 6)})`), el("td", {}, cells[0]), el("td", {}, cells[1])));
    }
  }
  target.replaceChildren(el("p", {}, `bin (${ph}, ${pw}): the mean of ${grid.gh * grid.gw} samples`),
    table(["sample (y, x)", "neighbours (y, x)", "weights w1..w4"], body));
}

function classProbs(p) {
  const K = META.num_classes;
  const body = [];
  for (let k = 0; k < K; k++) {
    const v = CLASS_PROBS[p * K + k];
    body.push(el("tr", { "data-role": "class-prob", "data-label": k, "data-value": v },
      el("td", {}, className(k)), el("td", {}, fmt(v, 4)),
      el("td", {}, el("span", { class: "bar", style: `width:${Math.round(v * 160)}px` }))));
  }
  return table(["class", "probability", ""], body, { class: "probs" });
}

function maskCanvas(d) {
  const probs = decode(d.mask_probs);
  const [M] = probs.shape;
  const canvas = heatmapCanvas(probs, M, M, 0, 1, 6);
  canvas.setAttribute("data-role", "mask-probs");
  const readout = el("span", { "data-role": "mask-readout" }, "hover the mask");
  canvas.addEventListener("mousemove", (e) => {
    const r = canvas.getBoundingClientRect();
    const j = Math.min(M - 1, Math.floor((e.clientX - r.left) / r.width * M));
    const i = Math.min(M - 1, Math.floor((e.clientY - r.top) / r.height * M));
    readout.textContent = `cell (${i}, ${j}): ${fmt(probs[i * M + j], 4)}`;
  });
  return el("div", {}, canvas, el("br"), readout);
}

function selectDetection(c) {
  state.selected = c;
  state.anchors = [];
  const p = CAND.proposal[c];
  const d = RECORDED.has(c) ? DATA.detections[RECORDED.get(c)] : null;
  const detail = document.getElementById("detail");
  const parts = [el("h3", {}, `${className(CAND.labels[c])}, score ${fmt(CAND.scores[c], 4)}`),
    el("p", {}, d ? `Detection ${RECORDED.get(c)} of the recorded pass (candidate ${c}, proposal ${p}).`
      : `Not a detection of the recorded pass: your thresholds let it through (candidate ${c}, proposal ${p}). ` +
        "Its mask was never computed."),
    el("p", { "data-role": "boxes" }, `proposal box [${PROPOSAL_BOX(p).map((v) => fmt(v)).join(", ")}], ` +
      `refined box [${CAND.boxes[c].map((v) => fmt(v)).join(", ")}]`),
    el("h4", {}, "FPN level of the proposal (the box head pooled from it)"),
    levelFormula(PROPOSAL_BOX(p), DATA.proposals.box_levels[p], "proposal-level")];
  if (d) {
    parts.push(el("h4", {}, "FPN level of the detection box (the mask head pooled from it)"),
      levelFormula(d.box, d.mask_grid.level, "mask-level"));
    parts.push(el("div", { class: "grids" },
      roiGrid(d.box_grid, d.proposal_box, `Box head RoIAlign of the proposal`, "box"),
      roiGrid(d.mask_grid, d.box, `Mask head RoIAlign of the detection`, "mask")));
  }
  parts.push(el("h4", {}, "Class probabilities of its proposal (box head softmax)"), classProbs(p));
  if (d) parts.push(el("h4", {}, `${META.mask_size} x ${META.mask_size} mask probabilities (sigmoid of class ${className(d.label)})`), maskCanvas(d));
  detail.replaceChildren(...parts);
  detail.hidden = false;
  drawScene();
}

const PROPOSAL_BOX = (p) => BEFORE_NMS[DATA.proposals.recorded_keep[p]];

function selectProposal(i) {
  // A proposal (index into the boxes before NMS): its score, level and, for a proposal of
  // the recorded pass, the box head's class probabilities.
  const p = DATA.proposals.recorded_keep.indexOf(i);
  const detail = document.getElementById("detail");
  const parts = [el("h3", {}, `Proposal: objectness ${fmt(BEFORE_SCORES[i], 4)}, from anchor level ` +
    `${DATA.levels[BEFORE_LEVELS[i]].label}`),
  el("p", { "data-role": "boxes" }, `box [${BEFORE_NMS[i].map((v) => fmt(v)).join(", ")}]`)];
  if (p >= 0) {
    parts.push(el("h4", {}, "FPN level the box head pooled it from"),
      levelFormula(BEFORE_NMS[i], DATA.proposals.box_levels[p], "proposal-level"),
      el("h4", {}, "Class probabilities (box head softmax)"), classProbs(p));
  } else {
    parts.push(el("p", {}, "Not a proposal of the recorded pass (your top-n or NMS differs): the box head never saw it."));
  }
  detail.replaceChildren(...parts);
  detail.hidden = false;
}

// ----------------------------------------------------------------------------- the stage panels
function levelSelect(onChange) {
  const select = el("select", { "data-role": "level-select" },
    ...DATA.levels.map((l, i) => el("option", { value: i }, `${l.label} (${l.shape[1]} x ${l.shape[2]})`)));
  select.addEventListener("change", onChange);
  return select;
}

function featurePanel() {
  // FPN maps: pick a level and one of its exported channels (or the mean over all channels)
  const box = el("div", { class: "map" });
  const channel = el("select", { "data-role": "channel-select" });
  const level = levelSelect(() => { fillChannels(); paint(); });
  const fillChannels = () => {
    const l = DATA.levels[Number(level.value)];
    channel.replaceChildren(el("option", { value: "mean" }, `mean of all ${l.shape[0]} channels`),
      ...l.channels.map((ch, i) => el("option", { value: i }, `channel ${ch}`)));
  };
  const paint = () => {
    const l = DATA.levels[Number(level.value)];
    const [, H, W] = l.shape;
    const values = channel.value === "mean" ? decode(l.mean)
      : decode(l.maps).subarray(Number(channel.value) * H * W, (Number(channel.value) + 1) * H * W);
    const [lo, hi] = range(values);
    const canvas = heatmapCanvas(values, H, W, lo, hi, Math.max(1, Math.floor(320 / W)));
    canvas.setAttribute("data-role", "feature-map");
    box.replaceChildren(canvas, el("p", {}, `values from ${fmt(lo)} to ${fmt(hi)}`));
  };
  channel.addEventListener("change", paint);
  fillChannels();
  paint();
  return [el("p", {}, "level ", level, " channel ", channel), box];
}

function objectnessPanel() {
  // Objectness logits per level and anchor shape; click a cell for its anchors
  const box = el("div", { class: "map" });
  const info = el("div", { "data-role": "anchor-info" }, "Click a cell: its anchors are drawn on the image.");
  const anchor = el("select", { "data-role": "anchor-select" });
  const level = levelSelect(() => { fillAnchors(); paint(); });
  const fillAnchors = () => {
    const [A] = DATA.objectness[Number(level.value)].shape;
    anchor.replaceChildren(el("option", { value: "max" }, "max over anchors"),
      ...Array.from({ length: A }, (_, a) => el("option", { value: a }, `anchor ${a} (h/w ${META.aspect_ratios[Number(level.value)][a] ?? a})`)));
  };
  const paint = () => {
    const lv = Number(level.value);
    const obj = DATA.objectness[lv];
    const logits = decode(obj.logits);
    const [A, H, W] = obj.shape;
    let values = new Float32Array(H * W);
    if (anchor.value === "max") {
      values.fill(-Infinity);
      for (let a = 0; a < A; a++) for (let i = 0; i < H * W; i++) values[i] = Math.max(values[i], logits[a * H * W + i]);
    } else values = logits.subarray(Number(anchor.value) * H * W, (Number(anchor.value) + 1) * H * W);
    const [lo, hi] = range(values);
    const cell = Math.max(1, Math.floor(320 / W));
    const canvas = heatmapCanvas(values, H, W, lo, hi, cell);
    canvas.setAttribute("data-role", "objectness-map");
    canvas.addEventListener("click", (e) => {
      const r = canvas.getBoundingClientRect();
      const x = Math.min(W - 1, Math.floor((e.clientX - r.left) / r.width * W));
      const y = Math.min(H - 1, Math.floor((e.clientY - r.top) / r.height * H));
      showAnchors(info, lv, y, x);
    });
    box.replaceChildren(canvas, el("p", {}, `logits from ${fmt(lo)} to ${fmt(hi)}`));
  };
  anchor.addEventListener("change", paint);
  fillAnchors();
  paint();
  return [el("p", {}, "level ", level, " ", anchor), box, info];
}

function showAnchors(info, lv, y, x) {
  // The anchors of cell (y, x): the recorded anchors of cell (0, 0) shifted by the stride
  const obj = DATA.objectness[lv];
  const [A, H, W] = obj.shape;
  const [sh, sw] = DATA.levels[lv].stride;
  const logits = decode(obj.logits);
  state.anchors = obj.cell_anchors.map((b) => [f32(b[0] + x * sw), f32(b[1] + y * sh), f32(b[2] + x * sw), f32(b[3] + y * sh)]);
  const body = state.anchors.map((b, a) => {
    const logit = logits[a * H * W + y * W + x];
    return el("tr", { "data-role": "anchor-row" }, el("td", {}, a), el("td", {}, b.map((v) => fmt(v)).join(", ")),
      el("td", {}, fmt(logit)), el("td", {}, fmt(1 / (1 + Math.exp(-logit)))));
  });
  info.replaceChildren(el("p", {}, `${DATA.levels[lv].label} cell (${y}, ${x}), stride ${sh} x ${sw}:`),
    table(["anchor", "box (x1, y1, x2, y2)", "logit", "sigmoid"], body));
  drawScene();
}

function proposalsPanel() {
  const [H, W] = [IMG_H, IMG_W];
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, width: 320, height: 320 * H / W, class: "mini" });
  svg.append(el("image", { href: DATA.image.src, x: 0, y: 0, width: W, height: H, opacity: 0.5 }));
  for (const b of BEFORE_NMS) svg.append(svgBox(b, { class: "before", "stroke-width": 0.5 * W / 320 }));
  for (const i of DATA.proposals.recorded_keep) svg.append(svgBox(BEFORE_NMS[i], { class: "after", "stroke-width": W / 320 }));
  return [el("p", {}, `${BEFORE_NMS.length} boxes before NMS (grey), ${DATA.proposals.recorded_keep.length} ` +
    `proposals after NMS at IoU ${META.rpn_nms_thresh} per level (orange), as recorded.`), svg];
}

function levelsPanel() {
  const counts = DATA.levels.slice(0, META.pooler_scales.length).map(() => 0);
  for (const l of DATA.proposals.box_levels) counts[l] += 1;
  return [table(["level", "proposals pooled there"], counts.map((n, i) =>
    el("tr", {}, el("td", {}, DATA.levels[i].label), el("td", {}, n)))),
  el("p", {}, "Click a detection to see the formula on its own box.")];
}

function sigmoidPanel() {
  const shown = DATA.detections.slice(0, 12);
  return [el("p", {}, `${META.mask_size} x ${META.mask_size} probabilities of the first ${shown.length} ` +
    `of ${DATA.detections.length} recorded detections (0 dark, 1 yellow).`),
  el("div", { class: "thumbs" }, ...shown.map((d) => {
    const probs = decode(d.mask_probs);
    const canvas = heatmapCanvas(probs, META.mask_size, META.mask_size, 0, 1, 2);
    return el("figure", {}, canvas, el("figcaption", {}, `${className(d.label)} ${fmt(d.score, 3)}`));
  }))];
}

function panelBody(stage) {
  const m = META;
  switch (stage.name) {
    case "image": {
      const img = el("img", { src: DATA.image.src, alt: "input image", width: Math.min(320, IMG_W) });
      return [img, el("p", {}, `original ${m.original_size.join(" x ")}, resized ${m.resized_size.join(" x ")}.`)];
    }
    case "normalize":
      return [table(["channel", "mean", "std"], ["R", "G", "B"].map((c, i) =>
        el("tr", {}, el("td", {}, c), el("td", {}, fmt(m.image_mean[i])), el("td", {}, fmt(m.image_std[i]))))),
      el("p", {}, `padded to ${m.padded_size.join(" x ")} (a multiple of 32).`)];
    case "backbone":
      return [table(["stage", "shape [C, H, W]", "stride"], DATA.levels.filter((l) => l.backbone).map((l) =>
        el("tr", {}, el("td", {}, l.backbone.label), el("td", {}, l.backbone.shape.join(" x ")), el("td", {}, l.stride[0]))))];
    case "fpn": return featurePanel();
    case "rpn": return objectnessPanel();
    case "proposals": return proposalsPanel();
    case "levels": return levelsPanel();
    case "roi_align":
      return [el("p", {}, `Pooled size ${m.box_pool_size.join(" x ")} for the box head, ${m.mask_pool_size.join(" x ")} ` +
        `for the mask head, sampling_ratio ${m.sampling_ratio}, aligned=False. Click a detection: its two grids ` +
        "appear under the image; hover a bin for its samples and bilinear weights.")];
    case "box_head": {
      const K = m.num_classes;
      const firsts = DATA.proposals.recorded_keep.slice(0, 8).map((_, p) => {
        let best = 0;
        for (let k = 1; k < K; k++) if (CLASS_PROBS[p * K + k] > CLASS_PROBS[p * K + best]) best = k;
        return el("tr", {}, el("td", {}, p), el("td", {}, className(best)), el("td", {}, fmt(CLASS_PROBS[p * K + best])));
      });
      return [el("p", {}, "Most likely class of the first proposals (click a detection for all K):"),
        table(["proposal", "class", "probability"], firsts)];
    }
    case "nms":
      return [el("p", {}, `${CAND.scores.length} candidates scored above ${m.recorded_score_thresh} in the recorded ` +
        `pass; ${DATA.detections.length} survived NMS at IoU ${m.box_nms_thresh}. The sliders above rerun the ` +
        "score filter and this NMS in the page.")];
    case "mask_head":
      return [table(["detection", "class", "pooled from"], DATA.detections.slice(0, 12).map((d, i) =>
        el("tr", {}, el("td", {}, i), el("td", {}, className(d.label)), el("td", {}, DATA.levels[d.mask_grid.level].label))))];
    case "sigmoid": return sigmoidPanel();
    case "paste":
      return [el("p", {}, `${DATA.detections.filter((d) => d.pasted).length} pasted masks, drawn on the image ` +
        "(toggle 'draw masks'); each is a probability map in the original image, cut at 0.5 for IoU.")];
    default: return [];
  }
}

function buildPanels() {
  const strip = document.getElementById("strip");
  const panels = document.getElementById("panels");
  for (const stage of DATA.stages) {
    const panel = el("section", { class: "panel", "data-stage": stage.name, hidden: "" },
      el("h2", {}, stage.title), el("p", { class: "shapes" }, stage.shapes), el("p", {}, stage.text),
      el("p", { class: "lesson" }, `Opened in ${stage.lesson}.`), ...panelBody(stage));
    panels.append(panel);
    strip.append(el("button", { type: "button", "data-open-stage": stage.name, onclick: () => {
      panel.hidden = !panel.hidden;
      if (!panel.hidden) panel.scrollIntoView({ block: "nearest" });
    } }, el("strong", {}, stage.title), el("span", {}, stage.shapes)));
  }
}

function buildControls() {
  const bind = (name, key, min, max, parse) => {
    const input = document.querySelector(`[data-control="${name}"]`);
    input.min = min;
    input.max = max;
    input.value = state[key];
    input.addEventListener("input", () => { state[key] = parse(input.value); recompute(); });
  };
  bind("score-threshold", "score", 0, 1, Number);
  bind("nms-iou", "iou", 0, 1, Number);
  bind("rpn-post-nms-top-n", "topN", 1, Math.max(1, DATA.proposals.recorded_keep.length), (v) => parseInt(v, 10));
  document.querySelectorAll("[data-toggle]").forEach((box) => box.addEventListener("change", drawScene));
  document.querySelector('[data-role="recompute-note"]').textContent =
    "Recomputed in this page: the score filter and per-class NMS of the detections (same greedy rule, tie " +
    "order and float32 arithmetic as minimrcnn.ops.batched_nms), the RPN's per-level NMS and top-n, true/false " +
    "positives. Everything else (features, objectness, proposals, class probabilities, RoIAlign sample points, " +
    `masks) is the recorded pass. Scores below ${META.recorded_score_thresh} were not recorded; a proposal cut ` +
    "by top-n removes its candidates (the box head treats each RoI on its own).";
}

function buildFooter() {
  const c = META.caps;
  document.getElementById("footer").replaceChildren(el("p", {},
    `Exported: all ${BEFORE_NMS.length} proposals before NMS, all objectness logits, the ${c.channels_per_level} ` +
    `most active channels of each FPN level plus the channel mean, at most ${c.candidates} detection candidates ` +
    `(${CAND.scores.length} here), ${DATA.detections.length} recorded detections with their masks. Written by ` +
    `minimrcnn (${DATA.format}); the data is in the #explain-data script element.`));
}

// Exposed for readers in the console and for the browser tests (docs/explain.md).
window.minimrcnnExplain = { DATA, decode, nms, batchedNms, selectDetections, selectProposals, bilinear, state,
  selectDetection, selectProposal };

buildScene();
buildControls();
buildPanels();
buildFooter();
recompute();
