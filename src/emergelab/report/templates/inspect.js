/* emergelab inspect: attention and rollout viewers (vanilla JS, no dependencies, works from file://).
 *
 * Data: the JSON element "inspect-data" = {tokens: [str], T, L, H, causal,
 *   attention: {format: "dense" | "top_keys", K, packed, weights: [L x H] base64 of zlib-compressed uint8
 *               (T, T | K) = sqrt(weight) x 255, one per head, keys: [L x H] the same of int16 key indices | null},
 *   rollout: {weights: base64 zlib uint8 (T, T), each row over its max, max: [T] floats}, start: {layer, head, query}}
 * A causal model's dense arrays are packed ("packed": true): row q holds keys 0..q only, rows one after another.
 * A head's bytes are inflated (the browser's DecompressionStream) when it is first shown; a heatmap is pooled (max) into at most
 * 640 x 640 pixels and drawn with putImageData, so 1,024 tokens draw in milliseconds; a hover recolours the token
 * strip and redraws a small overlay canvas only. Every token reaches the DOM through textContent, never
 * innerHTML: a token that looks like markup is shown as text.
 */
(function () {
  "use strict";
  var t0 = performance.now();
  var dataEl = document.getElementById("inspect-data");
  if (!dataEl) { return; }
  var D = JSON.parse(dataEl.textContent);
  var T = D.T, L = D.L, H = D.H, causal = !!D.causal;
  var MAXPX = 640, MAXCELL = 40;  // heatmap pixels at most; pixels per token at most (short texts)

  // base64 of zlib-compressed bytes -> Promise of a Uint8Array (the browser's own inflate: no library)
  function bytes(b64) {
    var bin = atob(b64), n = bin.length, raw = new Uint8Array(n);
    for (var i = 0; i < n; i++) { raw[i] = bin.charCodeAt(i); }
    var stream = new Blob([raw]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Response(stream).arrayBuffer().then(function (buf) { return new Uint8Array(buf); });
  }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function visible(tok) {
    return String(tok).replace(/\n/g, "\u21b5").replace(/\t/g, "\u21e5").replace(/\r/g, "");
  }
  function quote(tok) { return "\u201c" + visible(tok) + "\u201d"; }

  // colour of a byte b: white -> dark blue, linear in b; attention bytes are sqrt(weight) x 255, so weights of 1/T
  // stay visible; rollout bytes are the weight over its row's largest
  var LUT = new Uint8Array(256 * 3), CSS = new Array(256);
  for (var b = 0; b < 256; b++) {
    var w = b / 255;
    LUT[3 * b] = Math.round(255 + (8 - 255) * w);
    LUT[3 * b + 1] = Math.round(255 + (48 - 255) * w);
    LUT[3 * b + 2] = Math.round(255 + (107 - 255) * w);
    CSS[b] = "rgb(" + LUT[3 * b] + "," + LUT[3 * b + 1] + "," + LUT[3 * b + 2] + ")";
  }
  var tokens = D.tokens.map(String);
  var tip = el("div", "ins-tip");
  tip.setAttribute("role", "tooltip");
  document.body.appendChild(tip);

  var A = D.attention;
  if (typeof DecompressionStream === "undefined") {
    ["ins-attention", "ins-rollout"].forEach(function (id) {
      var node = document.getElementById(id);
      if (node) { node.appendChild(el("p", "empty", "This browser cannot inflate the embedded arrays " +
                                         "(DecompressionStream): open the report in a current Chrome, Firefox or Safari.")); }
    });
    return;
  }
  // each head is its own compressed array, inflated when first shown: opening the page inflates one head
  var heads = {};
  function headBytes(l, h) {
    var i = l * H + h;
    if (!heads[i]) {
      heads[i] = Promise.all([bytes(A.weights[i]), A.keys ? bytes(A.keys[i]) : null]).then(function (wk) {
        return { W: wk[0], K: wk[1] ? new Int16Array(wk[1].buffer) : null };
      });
    }
    return heads[i];
  }
  var first = D.start || { layer: 0, head: 0, query: T - 1, rollout_query: T - 1 };
  Promise.all([headBytes(first.layer, first.head), bytes(D.rollout.weights)]).then(function (arrs) {
    begin(arrs[0], arrs[1]);
  }).catch(function (e) { document.body.dataset.inspectError = String(e); throw e; });

  function begin(firstHead, RW) {
  document.body.dataset.inspectDecoded = String(Math.round(performance.now() - t0));
  // ---- sources: getRow(q) -> Uint8Array (T) of colour bytes; weight(q, k) -> the value shown -----------------
  var rowBuf = new Uint8Array(T);
  function attentionSource(state) {
    return {
      getRow: function (q) {
        var AW = state.bytes.W, AK = state.bytes.K;  // the head shown
        if (A.packed) {  // causal: row q holds keys 0..q, rows one after the other
          var o0 = q * (q + 1) / 2;
          return AW.subarray(o0, o0 + q + 1);
        }
        if (!AK) { return AW.subarray(q * T, (q + 1) * T); }
        rowBuf.fill(0);
        var o = q * A.K;
        for (var j = 0; j < A.K; j++) { rowBuf[AK[o + j]] = AW[o + j]; }
        return rowBuf;
      },
      weight: function (q, k) { var v = (this.getRow(q)[k] || 0) / 255; return v * v; },
      label: function () { return "layer " + state.layer + ", head " + state.head; }
    };
  }
  var RMAX = D.rollout.max;
  var rolloutSource = {
    getRow: function (q) {
      return causal ? RW.subarray(q * (q + 1) / 2, q * (q + 1) / 2 + q + 1) : RW.subarray(q * T, (q + 1) * T);
    },
    weight: function (q, k) { return (this.getRow(q)[k] || 0) / 255 * RMAX[q]; },
    label: function () { return "rollout (" + D.rollout.fusion + " of heads)"; }
  };

  // ---- one viewer: heatmap (pooled) + overlay, token strip, readout ------------------------------------------
  function Viewer(root, source, opts) {
    var self = this;
    var P = T >= MAXPX ? MAXPX : T * Math.min(MAXCELL, Math.floor(MAXPX / T));
    var cellOf = new Int32Array(P), pxOf = new Int32Array(T);
    for (var x = 0; x < P; x++) { cellOf[x] = Math.floor(x * T / P); }
    for (var c = 0; c < T; c++) { pxOf[c] = Math.floor(c * P / T); }
    var lastOf = new Int32Array(P);  // the last cell a pixel covers
    for (x = 0; x < P; x++) { lastOf[x] = x + 1 < P ? Math.max(cellOf[x], cellOf[x + 1] - 1) : T - 1; }
    this.state = { query: opts.query, pinned: opts.query, key: null };

    var wrap = el("div", "ins-view");
    var mapBox = el("div", "ins-map");
    var canvas = el("canvas", "ins-canvas"), over = el("canvas", "ins-over");
    [canvas, over].forEach(function (cv) {
      cv.width = P; cv.height = P; cv.style.width = P + "px"; cv.style.height = P + "px";
    });
    canvas.dataset.n = String(T);
    canvas.dataset.px = String(P);
    mapBox.appendChild(canvas);
    mapBox.appendChild(over);
    var axis = el("div", "ins-axis", "query \u2193 \u00b7 key \u2192 \u00b7 " + T + " tokens" +
                  (T > P ? " (" + (T / P).toFixed(2) + " tokens per pixel, max shown)" : ""));
    var side = el("div", "ins-side");
    var readout = el("div", "ins-readout");
    side.appendChild(readout);
    wrap.appendChild(el("div", "ins-mapcol")).appendChild(mapBox);
    wrap.firstChild.appendChild(axis);
    wrap.appendChild(side);
    root.appendChild(wrap);
    var strip = el("div", "ins-strip");
    var frag = document.createDocumentFragment();
    var chips = tokens.map(function (tok, i) {
      var chip = el("span", "tok", visible(tok));
      chip.dataset.i = String(i);
      frag.appendChild(chip);
      return chip;
    });
    strip.appendChild(frag);
    root.appendChild(el("p", "ins-hint", "Hover a token (or the heatmap) to see where it looks; click to pin it."));
    root.appendChild(strip);
    // one listener for the whole strip: 1,024 tokens need no 1,024 listeners
    strip.addEventListener("mouseover", function (e) {
      var i = e.target.dataset ? e.target.dataset.i : undefined;
      if (i !== undefined) { self.hover(+i, null); }
    });
    strip.addEventListener("mouseleave", function () { self.hover(null, null); });
    strip.addEventListener("click", function (e) {
      var i = e.target.dataset ? e.target.dataset.i : undefined;
      if (i !== undefined) { self.pin(+i); }
    });
    function at(e) {
      var r = over.getBoundingClientRect();
      var px = Math.min(P - 1, Math.max(0, Math.floor((e.clientX - r.left) * P / r.width)));
      var py = Math.min(P - 1, Math.max(0, Math.floor((e.clientY - r.top) * P / r.height)));
      return [cellOf[py], cellOf[px]];
    }
    over.addEventListener("mousemove", function (e) {
      var qk = at(e);
      self.hover(qk[0], qk[1]);
      tip.style.left = (e.clientX + 14) + "px";
      tip.style.top = (e.clientY + 14) + "px";
    });
    over.addEventListener("mouseleave", function () { self.hover(null, null); });
    over.addEventListener("click", function (e) { self.pin(at(e)[0]); });

    // the bytes a row is coloured by: as stored, or (the "row max" scale) over the row's largest byte
    var scaled = new Uint8Array(T);
    function colours(q) {
      var row = source.getRow(q);
      if (!opts.rowScale || !opts.rowScale()) { return row; }
      var n = row.length, m = 1, k;
      for (k = 0; k < n; k++) { if (row[k] > m) { m = row[k]; } }
      for (k = 0; k < n; k++) { scaled[k] = Math.round(row[k] * 255 / m); }
      scaled.fill(0, n);  // a packed (causal) row is q + 1 long
      return scaled;
    }
    var img = canvas.getContext("2d").createImageData(P, P), octx = over.getContext("2d");
    var G = new Uint8Array(P * P);
    this.draw = function () {
      G.fill(0);
      var q, k, row, py, v, o;
      if (T >= P) {
        for (q = 0; q < T; q++) {
          row = colours(q); o = pxOf[q] * P;
          var kEnd = causal ? q + 1 : T;
          for (k = 0; k < kEnd; k++) { v = row[k]; if (v > G[o + pxOf[k]]) { G[o + pxOf[k]] = v; } }
        }
      } else {
        for (py = 0; py < P; py++) {
          row = colours(cellOf[py]); o = py * P;
          for (var px = 0; px < P; px++) { G[o + px] = row[cellOf[px]]; }
        }
      }
      var data = img.data;
      for (py = 0; py < P; py++) {
        var qLast = lastOf[py];
        for (px = 0; px < P; px++) {
          var i = py * P + px, d = 4 * i;
          if (causal && cellOf[px] > qLast) {  // the future: masked by causality
            data[d] = 241; data[d + 1] = 243; data[d + 2] = 245;
          } else {
            v = 3 * G[i]; data[d] = LUT[v]; data[d + 1] = LUT[v + 1]; data[d + 2] = LUT[v + 2];
          }
          data[d + 3] = 255;
        }
      }
      canvas.getContext("2d").putImageData(img, 0, 0);
      self.update();
    };
    this.hover = function (q, k) {
      var s = self.state;
      s.query = q === null ? s.pinned : q;
      s.key = k;
      self.update();
      tip.style.display = k === null ? "none" : "block";
    };
    this.pin = function (q) { self.state.pinned = q; self.hover(q, null); };
    var shownQuery = -1;
    this.update = function () {
      var s = self.state, q = s.query, row = colours(q);
      root.dataset.query = String(q);
      if (shownQuery >= 0) { chips[shownQuery].classList.remove("q"); }
      for (var k = 0; k < T; k++) {
        var future = causal && k > q;
        chips[k].style.background = future ? "" : CSS[row[k]];
        chips[k].style.color = future ? "#adb5bd" : (row[k] > 150 ? "#fff" : "");
      }
      chips[q].classList.add("q");
      shownQuery = q;
      // overlay: the query row (and the hovered key column)
      octx.clearRect(0, 0, P, P);
      var y0 = pxOf[q], y1 = q + 1 < T ? pxOf[q + 1] : P;
      octx.strokeStyle = "#d9480f"; octx.lineWidth = 1;
      octx.strokeRect(0.5, y0 - 0.5, P - 1, Math.max(1, y1 - y0) + 1);
      if (s.key !== null) {
        var x0 = pxOf[s.key], x1 = s.key + 1 < T ? pxOf[s.key + 1] : P;
        octx.strokeStyle = "#111";
        octx.strokeRect(x0 - 0.5, 0.5, Math.max(1, x1 - x0) + 1, P - 1);
        tip.textContent = "query " + q + " " + quote(tokens[q]) + " \u2192 key " + s.key + " " +
          quote(tokens[s.key]) + ": " + source.weight(q, s.key).toFixed(3);
      }
      // readout: the strongest keys of the query
      var best = [];
      for (k = 0; k < T; k++) {
        if (row[k] && (best.length < 5 || row[k] > row[best[best.length - 1]])) {
          best.push(k);
          best.sort(function (a, b) { return row[b] - row[a]; });
          if (best.length > 5) { best.pop(); }
        }
      }
      readout.textContent = "";
      readout.appendChild(el("div", "ins-rtitle", source.label()));
      readout.appendChild(el("div", "ins-rq", "query " + q + " " + quote(tokens[q]) + " looks most at"));
      var list = el("ol", "ins-top");
      best.forEach(function (k) {
        list.appendChild(el("li", null, quote(tokens[k]) + " \u00b7 " + k + " \u2014 " + source.weight(q, k).toFixed(3)));
      });
      readout.appendChild(list);
    };
  }

  // ---- the attention viewer: layer and head selects -----------------------------------------------------------
  var attRoot = document.getElementById("ins-attention");
  var state = { layer: first.layer, head: first.head, bytes: firstHead };
  if (attRoot) {
    var controls = el("div", "ins-controls");
    function select(label, n, value, onchange) {
      var lab = el("label", null, label + " ");
      var s = el("select", "ins-" + label);
      for (var i = 0; i < n; i++) { s.appendChild(new Option(String(i), String(i))); }
      s.value = String(value);
      s.addEventListener("change", function () { onchange(+s.value); });
      lab.appendChild(s);
      controls.appendChild(lab);
      return s;
    }
    var viewer;
    var layerSel = select("layer", L, state.layer, function (v) { state.layer = v; show(); });
    var headSel = select("head", H, state.head, function (v) { state.head = v; show(); });
    var scaleLab = el("label", null, "colour ");
    var scaleSel = el("select", "ins-scale");
    scaleSel.appendChild(new Option("\u221aweight", "sqrt"));
    scaleSel.appendChild(new Option("each row over its max", "row"));
    scaleSel.addEventListener("change", function () { show(); });
    scaleLab.appendChild(scaleSel);
    controls.appendChild(scaleLab);
    var legend = el("span", "ins-legend");
    legend.appendChild(el("span", null, "0"));
    legend.appendChild(el("span", "ins-ramp"));
    legend.appendChild(el("span", null, "1"));
    controls.appendChild(legend);
    if (A.format === "top_keys") {
      controls.appendChild(el("span", "ins-note", "each query's " + A.K + " strongest keys are embedded"));
    }
    attRoot.appendChild(controls);
    viewer = new Viewer(attRoot, attentionSource(state), {
      query: first.query, rowScale: function () { return scaleSel.value === "row"; } });
    var show = function () {  // the head in `state`, once its bytes are inflated (the latest choice wins)
      var l = state.layer, h = state.head;
      layerSel.value = String(l); headSel.value = String(h);
      return headBytes(l, h).then(function (b) {
        if (state.layer !== l || state.head !== h) { return; }
        state.bytes = b;
        viewer.draw();
        attRoot.dataset.layer = String(l); attRoot.dataset.head = String(h);
        attRoot.dataset.scale = scaleSel.value;
      });
    };
    show();
    // rows of the head-detector table select their head
    document.querySelectorAll("tr[data-layer][data-head]").forEach(function (tr) {
      tr.addEventListener("click", function () {
        state.layer = +tr.dataset.layer; state.head = +tr.dataset.head; show();
        attRoot.scrollIntoView({ block: "start" });
      });
    });
  }
  var rollRoot = document.getElementById("ins-rollout");
  if (rollRoot) { new Viewer(rollRoot, rolloutSource, { query: first.rollout_query }).draw(); }
  document.body.dataset.inspectReady = String(Math.round(performance.now() - t0));
  }
})();
