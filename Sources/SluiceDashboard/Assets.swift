/// The dashboard's stylesheet and its one small script, served from memory: no build step, no CDN.
enum Assets {
    /// A small mark for the browser tab: three steps joined left to right.
    static let icon = """
        <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#111827"/>
        <path d="M6 22 L13 12 L19 18 L26 9" stroke="#38bdf8" stroke-width="3" fill="none" stroke-linecap="round"/></svg>
        """

    static let css = """
        :root { --fg: #1f2937; --muted: #6b7280; --line: #e5e7eb; --bg: #f8fafc; --accent: #2563eb;
          --completed: #16a34a; --cached: #0891b2; --running: #d97706; --failed: #dc2626; --skipped: #9ca3af; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: var(--fg);
          background: var(--bg); }
        header.top { display: flex; gap: 24px; align-items: center; padding: 10px 24px; background: #111827; color: #fff; }
        header.top a { color: #d1d5db; text-decoration: none; margin-right: 16px; }
        header.top a.current, header.top a:hover { color: #fff; }
        header.top .brand { font-weight: 700; font-size: 17px; color: #fff; letter-spacing: .02em; }
        header.top .stack { margin-left: auto; color: #9ca3af; font-size: 12px; }
        main { padding: 16px 24px 48px; max-width: 1280px; }
        h1 { font-size: 22px; margin: 8px 0 10px; } h2 { font-size: 16px; margin: 22px 0 8px; }
        a { color: var(--accent); }
        .mono, code, pre { font-family: "DejaVu Sans Mono", ui-monospace, monospace; font-size: 12.5px; }
        .small { font-size: 12px; color: var(--muted); }
        .meta, .crumbs { color: var(--muted); } .crumbs { margin: 0; }
        table.list { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
        table.list th, table.list td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: left;
          vertical-align: top; }
        table.list thead th { background: #f3f4f6; font-weight: 600; font-size: 12.5px; }
        table.list .num { text-align: right; font-variant-numeric: tabular-nums; }
        table.list tr.differs { background: #fef9c3; } table.list tr.section th { background: #eef2ff; }
        table.list td.best { font-weight: 700; } table.list tr.bad td { background: #fef2f2; }
        .empty { color: var(--muted); font-style: italic; }
        .badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; color: #fff;
          background: var(--muted); margin-right: 4px; }
        .badge.completed { background: var(--completed); } .badge.cached { background: var(--cached); }
        .badge.running { background: var(--running); } .badge.failed, .badge.crashed { background: var(--failed); }
        .badge.skipped, .badge.cancelled { background: var(--skipped); }
        .badge.stage-production { background: var(--completed); } .badge.stage-staging { background: var(--running); }
        .badge.stage-archived { background: var(--skipped); } .badge.stage-none { background: #94a3b8; }
        .dirty { color: var(--failed); margin-left: 4px; font-size: 12px; }
        pre.error { background: #fef2f2; border: 1px solid #fecaca; color: #991b1b; padding: 10px; white-space: pre-wrap; }
        pre.code, pre.log { background: #fff; border: 1px solid var(--line); padding: 10px; overflow: auto; max-height: 420px; }
        pre.log { background: #0f172a; color: #e2e8f0; }
        dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 8px 0; }
        dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; word-break: break-all; }
        form.filters { display: flex; flex-wrap: wrap; gap: 12px; align-items: end; margin-bottom: 12px; }
        form.inline { display: inline-flex; gap: 6px; align-items: center; margin: 0 6px 0 0; }
        input, select, button { font: inherit; padding: 3px 6px; }
        button, a.button { background: var(--accent); color: #fff; border: 0; border-radius: 4px; padding: 5px 12px;
          cursor: pointer; text-decoration: none; display: inline-block; }
        button.danger { background: var(--failed); }
        .pager { display: flex; gap: 16px; margin-top: 12px; } .actions { margin: 10px 0; }
        .notice { background: #ecfdf5; border: 1px solid #a7f3d0; padding: 8px 12px; }
        .message { font-size: 15px; }
        .graph-frame { background: #fff; border: 1px solid var(--line); overflow: hidden; height: 300px; cursor: grab; }
        .graph-frame.tall { height: 560px; }
        .graph-frame svg { width: 100%; height: 100%; }
        svg.graph .node rect { fill: #fff; stroke: #94a3b8; stroke-width: 1.5; }
        svg.graph .node .label { font-size: 13px; font-weight: 600; fill: var(--fg); }
        svg.graph .node .detail { font-size: 11px; fill: var(--muted); }
        svg.graph .node.completed rect { fill: #dcfce7; stroke: var(--completed); }
        svg.graph .node.cached rect { fill: #cffafe; stroke: var(--cached); stroke-dasharray: 5 3; }
        svg.graph .node.running rect { fill: #fef3c7; stroke: var(--running); }
        svg.graph .node.failed rect, svg.graph .node.crashed rect { fill: #fee2e2; stroke: var(--failed); }
        svg.graph .node.skipped rect, svg.graph .node.cancelled rect, svg.graph .node.pending rect { fill: #f3f4f6;
          stroke: var(--skipped); }
        svg.graph .node.artifact rect { fill: #eff6ff; stroke: #60a5fa; rx: 16; }
        svg.graph .node.root rect { stroke: #1d4ed8; stroke-width: 3; }
        svg.graph .node.model rect { fill: #f5f3ff; stroke: #7c3aed; }
        svg.graph .node.model.stage-production rect { fill: #dcfce7; stroke: var(--completed); stroke-width: 2.5; }
        table.list tr:target td { background: #eef2ff; }
        svg.graph a:hover rect { stroke-width: 3; }
        svg.graph .edge { fill: none; stroke: #94a3b8; stroke-width: 1.5; } svg.graph .arrowhead { fill: #94a3b8; }
        iframe.report { width: 100%; height: 720px; border: 1px solid var(--line); background: #fff; }
        .scroll { overflow: auto; max-height: 480px; }
        table.nowrap td, table.nowrap th { white-space: nowrap; }
        svg.chart { background: #fff; border: 1px solid var(--line); }
        svg.chart .grid { stroke: #eef0f3; } svg.chart .tick, svg.chart .legend { font-size: 11px; fill: var(--muted); }
        svg.chart .chart-title { font-size: 13px; font-weight: 600; fill: var(--fg); }
        .legend .badge { margin-right: 8px; }
        """

    /// Live refresh (server-sent events re-fetch the page and swap its content) and pan and zoom on graphs.
    static let javascript = """
        "use strict";
        (function () {
          function panZoom(root) {
            root.querySelectorAll(".graph-frame svg.graph").forEach(function (svg) {
              if (svg.dataset.panzoom) return;
              svg.dataset.panzoom = "1";
              var box = svg.viewBox.baseVal, start = null, frame = svg.parentNode;
              // Drawn at its own size, or shrunk (not below 60%) to fit the frame's width; the frame as tall as the
              // graph up to a limit; centred vertically.
              var naturalW = box.width, naturalH = box.height;
              var k = Math.max(0.6, Math.min(1, frame.clientWidth / naturalW));
              frame.style.height = Math.min(Math.max(naturalH * k + 2, 120), frame.classList.contains("tall") ? 640 : 420) + "px";
              svg.removeAttribute("width"); svg.removeAttribute("height");
              var r0 = svg.getBoundingClientRect();
              if (r0.width > 0 && r0.height > 0) {
                box.width = r0.width / k; box.height = r0.height / k; box.x = 0; box.y = (naturalH - box.height) / 2;
                var focus = Number(svg.dataset.focusX);
                if (svg.dataset.focusX && box.width < naturalW) {
                  box.x = Math.min(Math.max(focus - box.width / 2, 0), naturalW - box.width);
                }
              }
              var base = { x: box.x, y: box.y, w: box.width, h: box.height };
              svg.addEventListener("wheel", function (e) {
                e.preventDefault();
                var r = svg.getBoundingClientRect(), k = e.deltaY > 0 ? 1.15 : 1 / 1.15;
                var px = box.x + (e.clientX - r.left) / r.width * box.width;
                var py = box.y + (e.clientY - r.top) / r.height * box.height;
                var w = Math.min(Math.max(box.width * k, base.w / 8), base.w * 8), h = w * box.height / box.width;
                box.x = px - (px - box.x) * w / box.width; box.y = py - (py - box.y) * h / box.height;
                box.width = w; box.height = h;
              }, { passive: false });
              svg.addEventListener("pointerdown", function (e) {
                if (e.target.closest("a")) return;
                start = { x: e.clientX, y: e.clientY, bx: box.x, by: box.y }; svg.setPointerCapture(e.pointerId);
              });
              svg.addEventListener("pointermove", function (e) {
                if (!start) return;
                var r = svg.getBoundingClientRect();
                box.x = start.bx - (e.clientX - start.x) * box.width / r.width;
                box.y = start.by - (e.clientY - start.y) * box.height / r.height;
              });
              svg.addEventListener("pointerup", function () { start = null; });
              svg.addEventListener("dblclick", function () { box.x = base.x; box.y = base.y; box.width = base.w; box.height = base.h; });
            });
          }
          function live() {
            var url = document.body.dataset.live;
            if (!url || !window.EventSource) return;
            var busy = false, again = false;
            function refresh() {
              if (busy) { again = true; return; }
              busy = true;
              fetch(location.href, { headers: { "Accept": "text/html" }, credentials: "same-origin" })
                .then(function (r) { return r.text(); })
                .then(function (html) {
                  var next = new DOMParser().parseFromString(html, "text/html").getElementById("live-root");
                  var log = document.getElementById("log"), follow = log && log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
                  if (next) { document.getElementById("live-root").innerHTML = next.innerHTML; panZoom(document); }
                  log = document.getElementById("log");
                  if (log && follow) log.scrollTop = log.scrollHeight;
                  document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
                })
                .finally(function () { busy = false; if (again) { again = false; refresh(); } });
            }
            var source = new EventSource(url);
            source.addEventListener("change", refresh);
          }
          document.addEventListener("DOMContentLoaded", function () {
            panZoom(document);
            var log = document.getElementById("log");
            if (log) log.scrollTop = log.scrollHeight;
            live();
          });
        })();
        """
}
