// bench/jsonata/bench.js -- the peer's side of bench/jsonata_bench.sh: each
// expression of exprs.txt over doc.json (as $states.input), N evaluations
// of the expression compiled once and N of compile-and-evaluate; prints
// "<evals/s compiled> <evals/s with compile> <result JSON>" per expression.
const jsonata = require('jsonata');
const fs = require('fs');
const n = parseInt(process.argv[2] || '20000', 10);
const doc = JSON.parse(fs.readFileSync(__dirname + '/doc.json', 'utf8'));
const exprs = fs.readFileSync(__dirname + '/exprs.txt', 'utf8').split('\n').filter(x => x);
const bindings = {states: {input: doc}};
(async () => {
  for (const e of exprs) {
    const x = jsonata(e);
    let r;
    let t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) r = await x.evaluate(null, bindings);
    const compiled = n / (Number(process.hrtime.bigint() - t0) / 1e9);
    t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) r = await jsonata(e).evaluate(null, bindings);
    const fresh = n / (Number(process.hrtime.bigint() - t0) / 1e9);
    console.log(Math.round(compiled) + ' ' + Math.round(fresh) + ' ' + JSON.stringify(r));
  }
})();
