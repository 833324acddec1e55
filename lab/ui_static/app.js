// The live view's page (lab/ui.py). Served as a file, not inline: the page's Content-Security-Policy runs
// scripts from this origin only. A switch sends the token this start of the server put in the page.
const token = document.querySelector('meta[name="nfwlab-token"]').content;
let next = 0;

function showError(text) {
  const box = document.getElementById('error');
  box.textContent = text; box.hidden = !text;
}

async function state() {
  const s = await (await fetch('/api/state')).json();
  document.getElementById('design').textContent = s.design;
  document.getElementById('routes').textContent = s.route_tables;
  document.getElementById('diagram').innerHTML = s.diagram_svg;
  const bar = document.getElementById('bar'); bar.innerHTML = '';
  for (const d of s.designs) {
    const b = document.createElement('button'); b.textContent = d; b.id = 'design-' + d;
    if (d === s.design) b.className = 'current';
    b.onclick = async () => {
      const r = await fetch('/api/design', {method: 'POST', body: JSON.stringify({design: d}),
                                            headers: {'Content-Type': 'application/json', 'X-NFWLab-Token': token}});
      showError(r.ok ? '' : (await r.json()).error);
      await state();
    };
    bar.appendChild(b);
  }
}

async function alerts() {
  const r = await (await fetch('/api/alerts?since=' + next)).json();
  next = r.next;
  const body = document.getElementById('alerts');
  for (const a of r.alerts) {
    const tr = document.createElement('tr'); tr.className = 'alert'; tr.dataset.flow = a.flow_id;
    for (const [k, v] of [['time', a.time], ['verdict', a.verdict], ['src', a.src], ['dst', a.dst],
                          ['name', a.name], ['signature', a.signature], ['az', a.az], ['who', a.who]]) {
      const td = document.createElement('td'); td.className = k; td.textContent = v; td.title = a.why || '';
      tr.appendChild(td);
    }
    tr.onclick = async () => {
      const e = await (await fetch('/api/explain?flow_id=' + encodeURIComponent(a.flow_id))).json();
      const box = document.getElementById('explain');
      box.textContent = e.text || e.error; box.hidden = false;
    };
    body.insertBefore(tr, body.firstChild);
  }
  document.getElementById('count').textContent = body.children.length;
}

state(); alerts(); setInterval(alerts, 700);
