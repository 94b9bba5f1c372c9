/* Attention viewer for emergelab reports (vanilla JS, no dependencies, works from file://).
 *
 * Data comes from the JSON script element with id "attention-data":
 *   {models: [{label, tokens: [str], repeat: {start, segment_len, n_repeats} | null,
 *              heads: [{name, role, pattern: [[float]]}]}]}
 * Every token label reaches the DOM through textContent / Option text, never innerHTML, so a token
 * such as an HTML script tag is displayed as text, not executed.
 */
(function () {
  "use strict";

  var dataEl = document.getElementById("attention-data");
  if (!dataEl) { return; }
  var data = JSON.parse(dataEl.textContent);
  var ROLE_TEXT = { induction: "induction head", previous_token: "previous-token head", other: "other head" };

  var tooltip = document.createElement("div");
  tooltip.className = "attn-tooltip";
  tooltip.setAttribute("role", "tooltip");
  document.body.appendChild(tooltip);

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  // white -> dark blue ramp (ColorBrewer "Blues" end points), linear in the attention weight
  function ramp(w) {
    w = Math.max(0, Math.min(1, w || 0));
    var r = Math.round(255 + (8 - 255) * w), g = Math.round(255 + (48 - 255) * w), b = Math.round(255 + (107 - 255) * w);
    return "rgb(" + r + "," + g + "," + b + ")";
  }

  function quote(tok) { return "\u201c" + tok + "\u201d"; }

  function initViewer(root, model) {
    var tokens = (model.tokens || []).map(String);
    var T = tokens.length;
    var heads = model.heads || [];
    if (!T || !heads.length) {
      root.appendChild(el("p", "empty", "No example attention patterns were recorded for this model."));
      return;
    }
    var rep = model.repeat || null;
    var boundaries = [];
    if (rep && rep.segment_len > 0) {
      for (var k = 0; k < (rep.n_repeats || 0); k++) {
        var b = rep.start + k * rep.segment_len;
        if (b > 0 && b < T) { boundaries.push(b); }
      }
    }
    // the default query: middle of the second copy of the segment, where an induction head is obvious
    var defaultQuery = T - 1;
    if (rep && rep.segment_len > 0 && rep.n_repeats > 1) {
      defaultQuery = Math.min(T - 1, rep.start + rep.segment_len + Math.floor(rep.segment_len / 2));
    }
    var state = { head: 0, locked: defaultQuery, hover: null };

    // hovering a token chip or a query label shows where query i attends; a click pins it
    function selectsQuery(node, i) {
      node.addEventListener("mouseenter", function () { state.hover = { q: i, k: null }; update(); });
      node.addEventListener("mouseleave", function () { state.hover = null; update(); });
      node.addEventListener("click", function () { state.locked = i; update(); });
    }

    // ---- controls
    var controls = el("div", "attn-controls");
    var lab = el("label", null, "Head ");
    var select = el("select", "attn-select");
    heads.forEach(function (h, i) {
      select.appendChild(new Option(h.name + " \u2014 " + (ROLE_TEXT[h.role] || h.role), String(i)));
    });
    lab.appendChild(select);
    controls.appendChild(lab);
    var roleTag = el("span", "tag attn-role");
    controls.appendChild(roleTag);
    var legend = el("span", "legend");
    legend.appendChild(el("span", null, "0"));
    legend.appendChild(el("span", "ramp"));
    legend.appendChild(el("span", null, "1"));
    controls.appendChild(legend);
    controls.appendChild(el("span", "attn-hint", "Hover a cell for its weight \u00b7 click a row or token to pin it"));
    root.appendChild(controls);

    // ---- token strip: the sequence as text; tinted by the pinned/hovered query's attention
    var strip = el("div", "attn-strip");
    var chips = tokens.map(function (tok, i) {
      var chip = el("span", "tok", tok);
      chip.dataset.index = String(i);
      chip.title = "position " + i;
      if (boundaries.indexOf(i) >= 0) { chip.classList.add("seg-start"); }
      selectsQuery(chip, i);
      strip.appendChild(chip);
      return chip;
    });
    root.appendChild(strip);

    // ---- heatmap grid: key labels on top, query labels on the left, canvas cells
    var cell = Math.max(6, Math.min(20, Math.floor(560 / T)));
    var font = Math.max(7, Math.min(12, cell - 3));
    var scroll = el("div", "attn-scroll");
    var grid = el("div", "attn-grid");
    var corner = el("div", "attn-corner", "query \u2193  key \u2192");
    var top = el("div", "attn-top");
    var left = el("div", "attn-left");
    // one cell-sized label per token: `extent` is "width" for the key columns, "height" for the query rows
    function gridLabel(parent, tok, extent, title) {
      var l = el("div", "lab", tok);
      l.style[extent] = cell + "px";
      l.style.lineHeight = cell + "px";
      l.style.fontSize = font + "px";
      l.title = title;
      parent.appendChild(l);
      return l;
    }
    var topLabs = tokens.map(function (tok, j) { return gridLabel(top, tok, "width", "key " + j); });
    var leftLabs = tokens.map(function (tok, i) {
      var l = gridLabel(left, tok, "height", "query " + i);
      selectsQuery(l, i);
      return l;
    });
    var canvas = el("canvas", "attn-canvas");
    var dpr = window.devicePixelRatio || 1;
    var size = T * cell;
    canvas.width = Math.round(size * dpr);
    canvas.height = Math.round(size * dpr);
    canvas.style.width = size + "px";
    canvas.style.height = size + "px";
    canvas.dataset.n = String(T);
    canvas.dataset.cell = String(cell);
    var ctx = canvas.getContext("2d");
    var base = document.createElement("canvas");  // cached heatmap; overlays are redrawn on top
    base.width = canvas.width;
    base.height = canvas.height;
    var bctx = base.getContext("2d");
    grid.appendChild(corner);
    grid.appendChild(top);
    grid.appendChild(left);
    grid.appendChild(canvas);
    scroll.appendChild(grid);
    root.appendChild(scroll);
    var readout = el("div", "attn-readout");
    root.appendChild(readout);

    function weight(q, k) {
      var row = heads[state.head].pattern[q];
      var w = row ? row[k] : null;
      return (w === null || w === undefined) ? 0 : w;
    }

    function drawBase() {
      bctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      bctx.fillStyle = "#f3f4f6";  // future positions are masked by causality
      bctx.fillRect(0, 0, size, size);
      for (var q = 0; q < T; q++) {
        for (var k = 0; k <= q; k++) {
          bctx.fillStyle = ramp(weight(q, k));
          bctx.fillRect(k * cell, q * cell, cell, cell);
        }
      }
      // repeated-segment boundaries: an induction head shows as a stripe offset from the diagonal
      bctx.strokeStyle = "rgba(217,72,15,0.55)";
      bctx.lineWidth = 1;
      bctx.setLineDash([3, 3]);
      boundaries.forEach(function (b) {
        bctx.beginPath();
        bctx.moveTo(b * cell + 0.5, 0); bctx.lineTo(b * cell + 0.5, size);
        bctx.moveTo(0, b * cell + 0.5); bctx.lineTo(size, b * cell + 0.5);
        bctx.stroke();
      });
      bctx.setLineDash([]);
    }

    function draw() {
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      ctx.drawImage(base, 0, 0);
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      var q = currentQuery();
      ctx.strokeStyle = "#d9480f";
      ctx.lineWidth = 2;
      ctx.strokeRect(1, q * cell + 1, size - 2, cell - 2);
      if (state.hover && state.hover.k !== null) {
        ctx.strokeStyle = "#111";
        ctx.lineWidth = 1.5;
        ctx.strokeRect(state.hover.k * cell + 0.75, state.hover.q * cell + 0.75, cell - 1.5, cell - 1.5);
      }
    }

    function currentQuery() { return state.hover ? state.hover.q : state.locked; }

    function update() {
      var q = currentQuery();
      var hk = state.hover ? state.hover.k : null;
      var best = 0;
      for (var k = 0; k < T; k++) {
        var w = k <= q ? weight(q, k) : 0;
        if (w > weight(q, best)) { best = k; }
        var chip = chips[k];
        chip.style.background = k <= q ? ramp(w) : "transparent";
        chip.style.color = w > 0.5 ? "#fff" : "";
        chip.style.opacity = k <= q ? "1" : "0.45";
        chip.classList.toggle("query", k === q);
        topLabs[k].classList.toggle("on", k === hk || (hk === null && k === best));
        leftLabs[k].classList.toggle("on", k === q);
      }
      readout.textContent = "query " + q + " " + quote(tokens[q]) + " attends most to key " + best + " " +
        quote(tokens[best]) + " (weight " + weight(q, best).toFixed(3) + ")";
      draw();
    }

    function selectHead(i) {
      state.head = i;
      var h = heads[i];
      roleTag.textContent = ROLE_TEXT[h.role] || h.role;
      roleTag.className = "tag attn-role " + h.role;
      root.dataset.head = h.name;
      drawBase();
      update();
    }

    function cellAt(ev) {
      var r = canvas.getBoundingClientRect();
      var k = Math.floor((ev.clientX - r.left) / (r.width / T));
      var q = Math.floor((ev.clientY - r.top) / (r.height / T));
      if (q < 0 || k < 0 || q >= T || k >= T) { return null; }
      return { q: q, k: k };
    }

    canvas.addEventListener("mousemove", function (ev) {
      var c = cellAt(ev);
      if (!c) { return; }
      state.hover = c;
      var text = "query token " + c.q + " " + quote(tokens[c.q]) + " \u2192 key token " + c.k + " " + quote(tokens[c.k]) +
        ": " + (c.k <= c.q ? weight(c.q, c.k).toFixed(3) : "masked (future)");
      tooltip.textContent = text;
      tooltip.style.display = "block";
      var x = ev.clientX + 14, y = ev.clientY + 14;
      var tw = tooltip.offsetWidth, th = tooltip.offsetHeight;
      if (x + tw > window.innerWidth - 4) { x = ev.clientX - tw - 10; }
      if (y + th > window.innerHeight - 4) { y = ev.clientY - th - 10; }
      tooltip.style.left = x + "px";
      tooltip.style.top = y + "px";
      update();
    });
    canvas.addEventListener("mouseleave", function () {
      tooltip.style.display = "none";
      state.hover = null;
      update();
    });
    canvas.addEventListener("click", function (ev) {
      var c = cellAt(ev);
      if (c) { state.locked = c.q; update(); }
    });
    select.addEventListener("change", function () { selectHead(Number(select.value)); });

    selectHead(0);
  }

  var roots = document.querySelectorAll(".attn-model");
  for (var i = 0; i < roots.length; i++) {
    var model = (data.models || [])[Number(roots[i].dataset.modelIndex)];
    if (model) { initViewer(roots[i], model); }
  }
})();
