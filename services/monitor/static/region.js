// Region page charts, drawn from the figures the server embedded (#page-data: the same JSON as the API).
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("page-data").textContent);
  var charts = {};
  function chart(id, option) {
    var el = document.getElementById(id);
    if (!el) { return; }
    var c = echarts.init(el, null, { renderer: "canvas" });
    option.animation = false;  // drawn at once: what the page shows is final (and what a screenshot keeps)
    c.setOption(option);
    charts[id] = c;
  }
  function sum(rows, key) {
    return rows.reduce(function (s, r) { return s + (r[key] || 0); }, 0);
  }
  // attainment: per child region (or the region itself, for a county), actual and target summed over tiers
  var att = data.attainment;
  var places = att.children.length ? att.children : [att.region];
  var rowsOf = function (code) {
    var rows = att.children.length ? att.rows : att.total;
    return rows.filter(function (r) { return r.region.code === code; });
  };
  var actual = places.map(function (p) { return sum(rowsOf(p.code), "actual"); });
  var target = places.map(function (p) {
    var rows = rowsOf(p.code).filter(function (r) { return r.target !== null; });
    return rows.length ? sum(rows, "target") : null;
  });
  chart("chart-attainment", {
    tooltip: { trigger: "axis" }, legend: { data: ["有效认定", "目标"] },
    grid: { left: 10, right: 10, bottom: 10, containLabel: true },
    xAxis: { type: "category", data: places.map(function (p) { return p.name; }), axisLabel: { rotate: 30 } },
    yAxis: { type: "value", minInterval: 1 },
    series: [{ name: "有效认定", type: "bar", data: actual, itemStyle: { color: "#1d4e89" } },
             { name: "目标", type: "bar", data: target, itemStyle: { color: "#f0a04b" } }]
  });
  // funnel: pool → applied → each review level → recognised
  var f = data.funnel.total;
  var steps = [["培育库在库", f.pool], ["申报", f.applied], ["县级审核通过", f.stages.county + f.stages.city + f.stages.province + f.stages.publicity + f.stages.recognised],
               ["市级审核通过", f.stages.city + f.stages.province + f.stages.publicity + f.stages.recognised],
               ["省级审核通过", f.stages.province + f.stages.publicity + f.stages.recognised], ["当年新认定", f.recognised]];
  chart("chart-funnel", {
    tooltip: { trigger: "item" },
    series: [{ name: "培育漏斗", type: "funnel", sort: "none", left: "10%", width: "80%", minSize: "8%",
               label: { formatter: "{b}: {c}" },
               data: steps.map(function (s) { return { name: s[0], value: s[1] }; }) }]
  });
  // money vs budget per child region
  var money = data.money;
  var mrows = money.rows.length ? money.rows : [money.total];
  var num = function (v) { return v === null ? null : Number(v); };
  chart("chart-money", {
    tooltip: { trigger: "axis" }, legend: { data: ["已审批", "已拨付", "预算"] },
    grid: { left: 10, right: 10, bottom: 10, containLabel: true },
    xAxis: { type: "category", data: mrows.map(function (r) { return r.region.name; }), axisLabel: { rotate: 30 } },
    yAxis: { type: "value" },
    series: [{ name: "已审批", type: "bar", data: mrows.map(function (r) { return num(r.approved); }) },
             { name: "已拨付", type: "bar", data: mrows.map(function (r) { return num(r.paid); }) },
             { name: "预算", type: "bar", data: mrows.map(function (r) { return num(r.budget); }) }]
  });
  // year on year
  var yoy = data.yoy.rows;
  chart("chart-yoy", {
    tooltip: { trigger: "axis" }, legend: { data: ["当年新认定", "申报", "培育库在库"] },
    grid: { left: 10, right: 10, bottom: 10, containLabel: true },
    xAxis: { type: "category", data: yoy.map(function (r) { return String(r.year); }) },
    yAxis: { type: "value", minInterval: 1 },
    series: [{ name: "当年新认定", type: "bar", data: yoy.map(function (r) { return r.recognised; }) },
             { name: "申报", type: "bar", data: yoy.map(function (r) { return r.applied; }) },
             { name: "培育库在库", type: "line", data: yoy.map(function (r) { return r.pool; }) }]
  });
  window.monitorCharts = charts;
  window.addEventListener("resize", function () { Object.keys(charts).forEach(function (k) { charts[k].resize(); }); });
})();
