// Session 69: the n-gram model's arithmetic in plain JavaScript typed arrays, random weights of the trained
// students' shape (40 ids, a 32,001 x 50 int8 table with a scale per row, 50 x 256 ReLU, 256 x 2). Usage: node js_kernel.mjs
// (prints µs a text, best of 5 runs of 100,000 after 200,000 warm-up calls); float64 arrays for x, y, z and the
// weights gave 15.8 µs against 16.3 (Node 20, AMD EPYC "Zen 5", idle).
const dim=50, hid=256, out=2, rows=32001;
const table=new Int8Array(rows*dim).map(()=>Math.floor(Math.random()*255)-127), scale=new Float32Array(rows).fill(0.01);
const w1=new Float32Array(dim*hid).map(Math.random), b1=new Float32Array(hid), w2=new Float32Array(hid*out).map(Math.random), b2=new Float32Array(out);
const x=new Float32Array(dim), y=new Float32Array(hid), z=new Float32Array(out);
const ids=Int32Array.from({length:40},()=>Math.floor(Math.random()*rows));
function run(ids){
  x.fill(0); let n=0;
  for (let t=0;t<ids.length;t++){const id=ids[t]; if(id>0)n++; const s=scale[id], base=id*dim; for(let d=0;d<dim;d++) x[d]+=table[base+d]*s;}
  const c=n<1?1:n; for(let d=0;d<dim;d++) x[d]/=c;
  y.set(b1); for(let k=0;k<dim;k++){const xk=x[k], base=k*hid; for(let o=0;o<hid;o++) y[o]+=xk*w1[base+o];}
  for(let o=0;o<hid;o++) if(!(y[o]>0)) y[o]=0;
  z.set(b2); for(let k=0;k<hid;k++){const yk=y[k], base=k*out; for(let o=0;o<out;o++) z[o]+=yk*w2[base+o];}
  return [z[0],z[1]];
}
for(let i=0;i<200000;i++) run(ids);
let best=1e9; for(let r=0;r<5;r++){const s=process.hrtime.bigint(); for(let i=0;i<100000;i++) run(ids); best=Math.min(best, Number(process.hrtime.bigint()-s)/100000/1000);} console.log('us', best);
