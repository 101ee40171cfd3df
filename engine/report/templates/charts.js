/* The report's interactive figures, inlined once by engine/report/html.py: each .chart element
   holds its specification as JSON (engine/report/interactive.py documents it) and is drawn as
   SVG, with a tooltip on hover, drag-to-zoom, double-click to reset and, where a figure has
   several frames (checkpoints), a slider. Tooltips are set as text, never as markup. */
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var HEIGHT = 360, MARGIN = { left: 62, right: 16, top: 10, bottom: 44 };
  var tooltip = document.getElementById("tooltip");

  function node(name, attrs, parent) {
    var element = document.createElementNS(NS, name);
    for (var key in attrs) { element.setAttribute(key, attrs[key]); }
    if (parent) { parent.appendChild(element); }
    return element;
  }

  function html(name, className, parent, text) {
    var element = document.createElement(name);
    if (className) { element.className = className; }
    if (text !== undefined) { element.textContent = text; }
    if (parent) { parent.appendChild(element); }
    return element;
  }

  /* Round ticks between lo and hi, about count of them. */
  function linearTicks(lo, hi, count) {
    var span = hi - lo;
    if (!(span > 0)) { return [lo]; }
    var step = Math.pow(10, Math.floor(Math.log10(span / count)));
    var error = span / count / step;
    if (error >= 5) { step *= 5; } else if (error >= 2) { step *= 2; }
    var ticks = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
      ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    }
    return ticks;
  }

  /* 0 and the powers of ten up to hi (a symmetric log axis of counts). */
  function logTicks(lo, hi) {
    var ticks = lo <= 0 ? [0] : [];
    for (var v = 1; v <= hi; v *= 10) { if (v >= lo) { ticks.push(v); } }
    return ticks;
  }

  function format(v) {
    if (v === 0) { return "0"; }
    var size = Math.abs(v);
    if (size >= 10000) { return v.toExponential(0).replace("+", ""); }
    if (size >= 100) { return v.toFixed(0); }
    return String(Math.round(v * 1000) / 1000);
  }

  function showTip(event, text) {
    tooltip.textContent = text;
    tooltip.style.display = "block";
    var x = event.clientX + 14, y = event.clientY + 14;
    if (x + 370 > window.innerWidth) { x = event.clientX - 370; }
    tooltip.style.left = x + "px";
    tooltip.style.top = y + "px";
  }

  function hideTip() { tooltip.style.display = "none"; }

  /* A value in a tooltip: whole numbers with thousands separators, others to 3 decimals. */
  function shown(v) {
    if (typeof v !== "number") { return String(v); }
    return Number.isInteger(v) ? v.toLocaleString("en-US") : String(Math.round(v * 1000) / 1000);
  }

  /* The tooltip of row i of a mark: its own text, or its template filled with its values. */
  function tipText(mark, i) {
    if (mark.tips) { return mark.tips[i]; }
    if (!mark.values || !mark.values[i]) { return undefined; }
    return mark.tip.replace(/\{(\d+)\}/g, function (_, k) { return shown(mark.values[i][Number(k)]); });
  }

  function Chart(host, spec) {
    this.host = host;
    this.spec = spec;
    this.frame = spec.frame || 0;
    this.height = spec.height || HEIGHT;
    this.full = { x: spec.x.slice(), y: spec.y.slice() };
    this.domain = { x: spec.x.slice(), y: spec.y.slice() };
    html("div", "title", host, spec.title);
    this.controls = html("div", "controls", host);
    this.svg = node("svg", { role: "img", "aria-label": spec.title }, host);
    this.legend(html("div", "legend", host));
    html("div", "hint", host, "Hover for values; drag to zoom; double-click to reset.");
    if (spec.frames.length > 1) { this.slider(); }
    this.interact();
    this.draw();
  }

  Chart.prototype.legend = function (box) {
    this.spec.legend.forEach(function (entry) {
      var swatch = html("span", "swatch", box);
      swatch.style.background = entry[1];
      if (entry[1].indexOf("gradient") >= 0) { swatch.style.width = "60px"; }
      box.appendChild(document.createTextNode(entry[0]));
    });
  };

  Chart.prototype.slider = function () {
    var chart = this, frames = this.spec.frames;
    html("span", "", this.controls, "checkpoint: ");
    var input = html("input", "", this.controls);
    input.type = "range";
    input.min = 0;
    input.max = frames.length - 1;
    input.value = this.frame;
    var label = html("span", "", this.controls, " " + frames[this.frame].label);
    input.addEventListener("input", function () {
      chart.frame = Number(input.value);
      label.textContent = " " + frames[chart.frame].label;
      chart.draw();
    });
  };

  Chart.prototype.scales = function () {
    var width = Math.min(this.host.clientWidth || 900, this.spec.width || 100000);
    var HEIGHT = this.height;
    var ylog = this.spec.ylog, d = this.domain;
    var f = function (v) { return ylog ? Math.log10(1 + Math.max(v, 0)) : v; };
    var left = MARGIN.left, right = width - MARGIN.right;
    var top = MARGIN.top, bottom = HEIGHT - MARGIN.bottom;
    return {
      width: width, height: HEIGHT, left: left, right: right, top: top, bottom: bottom,
      x: function (v) { return left + (v - d.x[0]) / (d.x[1] - d.x[0]) * (right - left); },
      y: function (v) { return bottom - (f(v) - f(d.y[0])) / (f(d.y[1]) - f(d.y[0])) * (bottom - top); },
      invertX: function (p) { return d.x[0] + (p - left) / (right - left) * (d.x[1] - d.x[0]); },
      invertY: function (p) {
        var g = f(d.y[0]) + (bottom - p) / (bottom - top) * (f(d.y[1]) - f(d.y[0]));
        return ylog ? Math.pow(10, g) - 1 : g;
      }
    };
  };

  Chart.prototype.axes = function (s) {
    var svg = this.svg, d = this.domain, spec = this.spec;
    var grid = node("g", { "class": "grid" }, svg), axis = node("g", { "class": "axis" }, svg);
    linearTicks(d.x[0], d.x[1], Math.max(3, Math.round((s.right - s.left) / 90))).forEach(function (v) {
      node("line", { x1: s.x(v), x2: s.x(v), y1: s.top, y2: s.bottom }, grid);
      node("text", { x: s.x(v), y: s.bottom + 16, "text-anchor": "middle" }, axis).textContent = format(v);
    });
    var yTicks = spec.ylog ? logTicks(d.y[0], d.y[1]) : linearTicks(d.y[0], d.y[1], 6);
    yTicks.forEach(function (v) {
      node("line", { x1: s.left, x2: s.right, y1: s.y(v), y2: s.y(v) }, grid);
      node("text", { x: s.left - 6, y: s.y(v) + 4, "text-anchor": "end" }, axis).textContent = format(v);
    });
    node("path", { d: "M" + s.left + "," + s.top + "V" + s.bottom + "H" + s.right, fill: "none" }, axis);
    node("text", { x: (s.left + s.right) / 2, y: s.height - 6, "text-anchor": "middle" }, axis).textContent = spec.xlabel;
    node("text", {
      x: -(s.top + s.bottom) / 2, y: 14, transform: "rotate(-90)", "text-anchor": "middle"
    }, axis).textContent = spec.ylabel + (spec.ylog ? " (log scale)" : "");
  };

  /* Each mark's elements carry the index of their tooltip text in data-tip. */
  Chart.prototype.mark = function (mark, s, layer, number) {
    var tip = function (element, i) {
      if (tipText(mark, i) !== undefined) { element.setAttribute("data-tip", number + ":" + i); }
    };
    if (mark.type === "rects") {
      mark.data.forEach(function (r, i) {
        if (r[3] === null || r[3] === r[2]) { return; }
        var x = s.x(r[0]), y = s.y(r[3]);
        var rect = node("rect", {
          x: x, y: y, width: Math.max(s.x(r[1]) - x, 0.5), height: Math.max(s.y(r[2]) - y, 0.5),
          fill: mark.colors ? mark.colors[i] : mark.color, "fill-opacity": mark.colors ? 1 : 0.85
        }, layer);
        tip(rect, i);
      });
    } else if (mark.type === "line") {
      var points = mark.points.filter(function (p) { return p[1] !== null; });
      var path = points.map(function (p, i) { return (i ? "L" : "M") + s.x(p[0]) + "," + s.y(p[1]); }).join("");
      node("path", {
        d: path, fill: "none", stroke: mark.color, "stroke-width": mark.width || 1.5,
        "stroke-dasharray": mark.dash ? "4 3" : "none"
      }, layer);
      mark.points.forEach(function (p, i) {
        if (p[1] === null) { return; }
        var hidden = mark.dash || mark.dots === false;
        var dot = node("circle", {
          cx: s.x(p[0]), cy: s.y(p[1]), r: hidden ? 4 : 3.5, fill: mark.color,
          "fill-opacity": hidden ? 0 : 0.9
        }, layer);
        tip(dot, i);
      });
    } else if (mark.type === "points") {
      mark.data.forEach(function (p, i) {
        var dot = node("circle", {
          cx: s.x(p[0]), cy: s.y(p[1]), r: 5, fill: mark.colors ? mark.colors[i] : mark.color,
          stroke: "#fff", "stroke-width": 1.5
        }, layer);
        tip(dot, i);
      });
    } else if (mark.type === "text") {
      mark.data.forEach(function (p, i) {
        var text = node("text", {
          x: s.x(p[0]), y: s.y(p[1]), "text-anchor": mark.anchors[i], fill: mark.colors[i],
          "font-weight": "bold", "font-size": 13, "dominant-baseline": "middle",
          stroke: "#fff", "stroke-width": 4, "paint-order": "stroke"
        }, layer);
        text.textContent = mark.labels[i];
      });
    } else if (mark.type === "rule") {
      var d = this.domain;
      var ends = mark.points || (mark.x !== undefined ? [[mark.x, d.y[0]], [mark.x, d.y[1]]]
                                                      : [[d.x[0], mark.y], [d.x[1], mark.y]]);
      var line = node("line", {
        x1: s.x(ends[0][0]), y1: s.y(ends[0][1]), x2: s.x(ends[1][0]), y2: s.y(ends[1][1]),
        stroke: "#111", "stroke-width": 1.2, "stroke-dasharray": "5 4"
      }, layer);
      tip(line, 0);
    }
  };

  Chart.prototype.draw = function () {
    var svg = this.svg, chart = this;
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    var s = this.scales();
    svg.setAttribute("height", s.height);
    svg.setAttribute("viewBox", "0 0 " + s.width + " " + s.height);
    if (this.spec.width) { svg.style.width = s.width + "px"; }
    this.axes(s);
    var clip = "clip" + Math.random().toString(36).slice(2);
    var defs = node("defs", {}, svg);
    node("rect", { x: s.left, y: s.top, width: s.right - s.left, height: s.bottom - s.top },
         node("clipPath", { id: clip }, defs));
    var layer = node("g", { "clip-path": "url(#" + clip + ")" }, svg);
    this.marks = this.spec.frames[this.frame].marks;
    this.marks.forEach(function (mark, number) { chart.mark(mark, s, layer, number); });
    this.selection = node("rect", { "class": "selection", width: 0, height: 0, display: "none" }, svg);
    this.current = s;
  };

  Chart.prototype.interact = function () {
    var chart = this, svg = this.svg, start = null;
    var point = function (event) {
      var box = svg.getBoundingClientRect(), s = chart.current;
      return [(event.clientX - box.left) * s.width / box.width, (event.clientY - box.top) * s.height / box.height];
    };
    svg.addEventListener("mousemove", function (event) {
      var target = event.target.getAttribute && event.target.getAttribute("data-tip");
      if (target && !start) {
        var parts = target.split(":");
        showTip(event, tipText(chart.marks[Number(parts[0])], Number(parts[1])));
      } else { hideTip(); }
      if (!start) { return; }
      var p = point(event), s = chart.current, onlyX = chart.spec.zoom === "x";
      var x0 = Math.min(start[0], p[0]), x1 = Math.max(start[0], p[0]);
      var y0 = onlyX ? s.top : Math.min(start[1], p[1]), y1 = onlyX ? s.bottom : Math.max(start[1], p[1]);
      var r = chart.selection;
      r.setAttribute("display", "inline");
      r.setAttribute("x", x0); r.setAttribute("y", y0);
      r.setAttribute("width", x1 - x0); r.setAttribute("height", y1 - y0);
    });
    svg.addEventListener("mouseleave", hideTip);
    svg.addEventListener("mousedown", function (event) { start = point(event); event.preventDefault(); });
    window.addEventListener("mouseup", function (event) {
      if (!start) { return; }
      var p = point(event), s = chart.current, from = start;
      start = null;
      chart.selection.setAttribute("display", "none");
      if (Math.abs(p[0] - from[0]) < 6) { return; }
      var x = [s.invertX(Math.min(from[0], p[0])), s.invertX(Math.max(from[0], p[0]))];
      chart.domain.x = x;
      if (chart.spec.zoom !== "x" && Math.abs(p[1] - from[1]) >= 6) {
        chart.domain.y = [s.invertY(Math.max(from[1], p[1])), s.invertY(Math.min(from[1], p[1]))];
      }
      chart.draw();
    });
    svg.addEventListener("dblclick", function () {
      chart.domain = { x: chart.full.x.slice(), y: chart.full.y.slice() };
      chart.draw();
    });
  };

  function drawPixels(canvas) {
    var shape = canvas.getAttribute("data-shape").split(",").map(Number);
    var bytes = atob(canvas.getAttribute("data-pixels"));
    var context = canvas.getContext("2d");
    var image = context.createImageData(shape[1], shape[0]);
    for (var i = 0; i < shape[0] * shape[1]; i++) {
      for (var c = 0; c < 3; c++) {
        image.data[4 * i + c] = bytes.charCodeAt(shape[2] === 1 ? i : 3 * i + c);
      }
      image.data[4 * i + 3] = 255;
    }
    context.putImageData(image, 0, 0);
  }

  var charts = [];
  Array.prototype.forEach.call(document.querySelectorAll(".chart"), function (host) {
    var spec = JSON.parse(host.querySelector("script").textContent);
    charts.push(new Chart(host, spec));
  });
  Array.prototype.forEach.call(document.querySelectorAll("canvas.pixels"), drawPixels);
  var pending = null;
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(function () { charts.forEach(function (c) { c.draw(); }); }, 150);
  });
})();
