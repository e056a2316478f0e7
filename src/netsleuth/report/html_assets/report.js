// netsleuth's report renderer: plain SVG drawn from the JSON embedded in the page, so a
// report opens offline (no library, no network). Charts: heatmap (one rect of class cell
// per CPU and time column), lines, bars and a findings timeline. Drag across any time chart
// to zoom all of them to that range; "reset zoom" or a #t=FROM-TO address sets it too.
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const DATA = JSON.parse(document.getElementById("netsleuth-data").textContent);
  const PAL = ["#0969da", "#cf222e", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a7b83",
               "#953800", "#57606a", "#6639ba"];
  const tip = document.getElementById("tip");
  const timeCharts = [];
  let range = null; // [from, to] seconds, or null for everything

  function el(name, attrs, parent) {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function fmt(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return "n/a";
    const a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(2) + " G";
    if (a >= 1e6) return (v / 1e6).toFixed(2) + " M";
    if (a >= 1e4) return (v / 1e3).toFixed(1) + " k";
    return (Math.round(v * 10) / 10).toLocaleString("en");
  }
  function showTip(evt, text) {
    tip.textContent = text;
    tip.style.display = "block";
    tip.style.left = evt.clientX + 14 + "px";
    tip.style.top = evt.clientY + 10 + "px";
  }
  function hideTip() { tip.style.display = "none"; }
  // Viridis-like ramp by linear interpolation between 5 stops; 0 is white-ish grey.
  const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  function ramp(f) {
    if (!(f > 0)) return "#f0f2f4";
    const x = Math.min(1, f) * (STOPS.length - 1), i = Math.min(STOPS.length - 2, Math.floor(x));
    const t = x - i, a = STOPS[i], b = STOPS[i + 1];
    return "rgb(" + a.map((c, k) => Math.round(c + (b[k] - c) * t)).join(",") + ")";
  }
  function visible(times) {
    const idx = [];
    for (let i = 0; i < times.length; i++) {
      if (!range || (times[i] >= range[0] && times[i] <= range[1])) idx.push(i);
    }
    return idx;
  }
  function timeAxis(svg, x0, x1, y, t0, t1) {
    for (let k = 0; k <= 5; k++) {
      const t = t0 + (t1 - t0) * k / 5, x = x0 + (x1 - x0) * k / 5;
      const anchor = k === 0 ? "start" : k === 5 ? "end" : "middle";
      el("text", { x: x, y: y + 14, class: "axis", "text-anchor": anchor }, svg).textContent =
        (Math.round(t * 10) / 10) + " s";
    }
  }
  // Linear x -> time over [x0, x1] (lines, timeline).
  function linear(x0, x1, t0, t1) {
    return (x) => t0 + (t1 - t0) * Math.max(0, Math.min(1, (x - x0) / Math.max(1, x1 - x0)));
  }
  // Drag across an svg to pick the time range between the two ends (toT maps x to seconds).
  function brush(svg, h, toT) {
    let start = null, box = null;
    const px = (evt) => evt.clientX - svg.getBoundingClientRect().left;
    svg.addEventListener("mousedown", (evt) => {
      start = px(evt);
      box = el("rect", { x: start, y: 0, width: 0, height: h, class: "brush" }, svg);
    });
    svg.addEventListener("mousemove", (evt) => {
      if (start === null) return;
      const x = px(evt);
      box.setAttribute("x", Math.min(x, start));
      box.setAttribute("width", Math.abs(x - start));
    });
    window.addEventListener("mouseup", (evt) => {
      if (start === null) return;
      const a = toT(start), b = toT(px(evt));
      start = null;
      box.remove();
      if (b !== a) zoom([Math.min(a, b), Math.max(a, b)]);
    });
  }
  function zoom(r) {
    range = r;
    document.querySelectorAll(".zoomed").forEach((e) => {
      e.textContent = r ? "showing " + r[0].toFixed(1) + "-" + r[1].toFixed(1) + " s" : "";
    });
    timeCharts.forEach((draw) => draw());
  }

  function heatmap(host, spec) {
    const draw = () => {
      host.textContent = "";
      const idx = visible(spec.times), rows = spec.rows.length;
      const W = Math.max(600, host.clientWidth || 1100), left = 60, right = 10;
      const cw = (W - left - right) / Math.max(1, idx.length), ch = Math.max(3, Math.min(16, 480 / rows));
      const top = 8, H = top + rows * ch + 24;
      const svg = el("svg", { width: W, height: H, class: "heatmap" }, host);
      let max = 0;
      spec.values.forEach((r) => idx.forEach((i) => { if (r[i] > max) max = r[i]; }));
      const logMax = Math.log1p(max);
      spec.values.forEach((r, row) => {
        if (rows <= 32 || row % Math.ceil(rows / 32) === 0) {
          el("text", { x: left - 6, y: top + row * ch + ch / 2 + 4, class: "axis", "text-anchor": "end" }, svg)
            .textContent = spec.label + " " + spec.rows[row];
        }
        idx.forEach((i, col) => {
          const v = r[i];
          const c = el("rect", {
            x: left + col * cw, y: top + row * ch, width: Math.max(cw, 0.5) + 0.3, height: ch,
            fill: v === null ? "#fff" : ramp(Math.log1p(v) / logMax), class: "cell",
            "data-m": spec.metric, "data-cpu": spec.rows[row], "data-t": spec.times[i], "data-v": v === null ? "" : v,
          }, svg);
          c.addEventListener("mousemove", (evt) => showTip(evt,
            spec.label + " " + spec.rows[row] + "\nsecond " + spec.times[i] + "\n" + fmt(v) + " " + spec.unit));
          c.addEventListener("mouseleave", hideTip);
        });
      });
      if (idx.length) timeAxis(svg, left, W - right, top + rows * ch, spec.times[idx[0]], spec.times[idx[idx.length - 1]]);
      // A heatmap column is one time: the drag selects the columns under its two ends.
      const column = (x) => spec.times[idx[Math.max(0, Math.min(idx.length - 1, Math.floor((x - left) / cw)))]];
      if (idx.length) brush(svg, top + rows * ch, column);
    };
    timeCharts.push(draw);
    draw();
  }

  function lines(host, spec) {
    const draw = () => {
      host.textContent = "";
      const idx = visible(spec.times);
      const W = Math.max(600, host.clientWidth || 1100), H = 220, left = 60, right = 10, top = 8, bottom = 24;
      const svg = el("svg", { width: W, height: H, class: "lines" }, host);
      let max = 0;
      spec.series.forEach((s) => idx.forEach((i) => { if (s.values[i] > max) max = s.values[i]; }));
      max = max || 1;
      const t0 = idx.length ? spec.times[idx[0]] : 0, t1 = idx.length ? spec.times[idx[idx.length - 1]] : 1;
      const X = (t) => left + (W - left - right) * (t - t0) / Math.max(1e-9, t1 - t0);
      const Y = (v) => top + (H - top - bottom) * (1 - v / max);
      for (let k = 0; k <= 4; k++) {
        const y = Y(max * k / 4);
        el("line", { x1: left, x2: W - right, y1: y, y2: y, class: "grid" }, svg);
        el("text", { x: left - 6, y: y + 4, class: "axis", "text-anchor": "end" }, svg).textContent = fmt(max * k / 4);
      }
      spec.series.forEach((s, n) => {
        const pts = idx.filter((i) => s.values[i] !== null).map((i) => X(spec.times[i]).toFixed(1) + "," + Y(s.values[i]).toFixed(1));
        el("polyline", { points: pts.join(" "), fill: "none", stroke: PAL[n % PAL.length],
                         "stroke-width": 1.5, class: "series", "data-name": s.name }, svg);
      });
      timeAxis(svg, left, W - right, H - bottom, t0, t1);
      svg.addEventListener("mousemove", (evt) => {
        if (!idx.length) return;
        const x = evt.clientX - svg.getBoundingClientRect().left;
        const t = t0 + (t1 - t0) * (x - left) / Math.max(1, W - left - right);
        let best = idx[0];
        idx.forEach((i) => { if (Math.abs(spec.times[i] - t) < Math.abs(spec.times[best] - t)) best = i; });
        showTip(evt, "second " + spec.times[best] + "\n" + spec.series.map((s) => s.name + ": " + fmt(s.values[best]) + " " + spec.unit).join("\n"));
      });
      svg.addEventListener("mouseleave", hideTip);
      brush(svg, H - bottom, linear(left, W - right, t0, t1));
      legend(host, spec.series.map((s) => s.name));
    };
    timeCharts.push(draw);
    draw();
  }

  function legend(host, names) {
    const div = document.createElement("div");
    div.className = "legend";
    names.forEach((name, n) => {
      const s = document.createElement("span");
      const i = document.createElement("i");
      i.style.background = PAL[n % PAL.length];
      s.appendChild(i);
      s.appendChild(document.createTextNode(name));
      div.appendChild(s);
    });
    host.appendChild(div);
  }

  function timeline(host, spec) {
    const draw = () => {
      host.textContent = "";
      const t0 = range ? range[0] : spec.start, t1 = range ? range[1] : spec.end;
      const W = Math.max(600, host.clientWidth || 1100), left = 200, right = 10, row = 18;
      const ids = [...new Set(spec.spans.map((s) => s.id))];
      const H = ids.length * row + 24;
      const svg = el("svg", { width: W, height: H, class: "timeline" }, host);
      const X = (t) => left + (W - left - right) * (t - t0) / Math.max(1e-9, t1 - t0);
      ids.forEach((id, r) => {
        el("text", { x: left - 6, y: r * row + 13, class: "axis", "text-anchor": "end" }, svg).textContent = id;
      });
      spec.spans.forEach((s) => {
        if (s.last < t0 || s.first - spec.step > t1) return;
        const a = Math.max(t0, s.first - spec.step), b = Math.min(t1, s.last);
        const bar = el("rect", { x: X(a), y: ids.indexOf(s.id) * row + 3, width: Math.max(2, X(b) - X(a)),
                                 height: row - 6, class: "span " + s.severity,
                                 fill: s.severity === "critical" ? "#cf222e" : s.severity === "warning" ? "#d4a72c" : "#0969da" }, svg);
        bar.addEventListener("mousemove", (evt) => showTip(evt, s.id + " (" + s.severity + ")\nsecond " + s.first + " to " + s.last + "\n" + s.summary));
        bar.addEventListener("mouseleave", hideTip);
      });
      timeAxis(svg, left, W - right, ids.length * row, t0, t1);
      brush(svg, ids.length * row, linear(left, W - right, t0, t1));
    };
    timeCharts.push(draw);
    draw();
  }

  function bars(host, spec) {
    const W = Math.max(240, Math.min(1100, 80 + spec.labels.length * 40)), H = 180, left = 60, top = 8, bottom = 24;
    const svg = el("svg", { width: W, height: H, class: "bars" }, host);
    const max = Math.max(1, ...spec.values);
    const bw = (W - left - 10) / Math.max(1, spec.values.length);
    for (let k = 0; k <= 4; k++) {
      const y = top + (H - top - bottom) * (1 - k / 4);
      el("line", { x1: left, x2: W - 10, y1: y, y2: y, class: "grid" }, svg);
      el("text", { x: left - 6, y: y + 4, class: "axis", "text-anchor": "end" }, svg).textContent = fmt(max * k / 4);
    }
    spec.values.forEach((v, i) => {
      const h = (H - top - bottom) * v / max;
      const b = el("rect", { x: left + i * bw + 2, y: H - bottom - h, width: Math.max(1, bw - 4), height: h,
                             fill: PAL[0], class: "bar", "data-label": spec.labels[i], "data-v": v }, svg);
      b.addEventListener("mousemove", (evt) => showTip(evt, spec.labels[i] + ": " + fmt(v) + " " + spec.unit));
      b.addEventListener("mouseleave", hideTip);
      if (spec.values.length <= 40) {
        el("text", { x: left + i * bw + bw / 2, y: H - bottom + 14, class: "axis", "text-anchor": "middle" }, svg)
          .textContent = spec.labels[i];
      }
    });
  }

  const KINDS = { heatmap: heatmap, lines: lines, timeline: timeline, bars: bars };
  const m = /#t=([\d.]+)-([\d.]+)/.exec(location.hash);
  if (m) range = [parseFloat(m[1]), parseFloat(m[2])];
  document.querySelectorAll("[data-chart]").forEach((host) => {
    const spec = DATA[host.getAttribute("data-chart")];
    KINDS[spec.kind](host, spec);
  });
  document.querySelectorAll(".reset").forEach((b) => b.addEventListener("click", () => zoom(null)));
  if (range) zoom(range);
  document.body.setAttribute("data-drawn", String(document.querySelectorAll("[data-chart] svg").length));
})();
