// Drawing the coin world from its state as the renderer (internalize.worlds.coin.render) draws
// it: floor, grid lines, walls, the goal inset by 2 px, the agent as a triangle pointing its way.
"use strict";
const World = {
  colors: null, width: 7,
  rgb(c) { return `rgb(${c[0]},${c[1]},${c[2]})`; },
  parse(layout) { return layout.split("\n").map(row => Array.from(row).map(ch => ch === "#")); },
  // walls[y][x]; goal [x, y]; agent [x, y, dir]; coin: the agent stands on the coin it reached
  draw(canvas, walls, goal, agent, coin) {
    const ctx = canvas.getContext("2d"), w = walls[0].length, tile = Math.floor(canvas.width / w);
    const C = this.colors;
    ctx.fillStyle = this.rgb(C.floor); ctx.fillRect(0, 0, canvas.width, canvas.height);
    for (let y = 0; y < walls.length; y++) for (let x = 0; x < w; x++) {
      ctx.fillStyle = this.rgb(C.grid);
      ctx.fillRect(x * tile, y * tile, tile, 1); ctx.fillRect(x * tile, y * tile, 1, tile);
      if (walls[y][x]) { ctx.fillStyle = this.rgb(C.wall); ctx.fillRect(x * tile, y * tile, tile, tile); }
    }
    const s = tile / 24;  // the renderer's goal inset is 2 px of a 24 px tile
    ctx.fillStyle = this.rgb(C.goal);
    ctx.fillRect(goal[0] * tile + 2 * s, goal[1] * tile + 2 * s, tile - 3 * s, tile - 3 * s);
    if (coin) {  // reached: a gold ring round the coin
      ctx.strokeStyle = "rgb(255,191,0)"; ctx.lineWidth = 4 * s;
      ctx.strokeRect(goal[0] * tile + 3 * s, goal[1] * tile + 3 * s, tile - 6 * s, tile - 6 * s);
    }
    // The triangle pointing right (apex (0.9, 0.5), base x = 0.15 from y 0.15 to 0.85), turned.
    const [ax, ay, dir] = agent, cx = (ax + 0.5) * tile, cy = (ay + 0.5) * tile;
    const pts = [[0.9, 0.5], [0.15, 0.15], [0.15, 0.85]].map(([u, v]) => [(u - 0.5) * tile, (v - 0.5) * tile]);
    const a = dir * Math.PI / 2, cos = Math.cos(a), sin = Math.sin(a);
    ctx.fillStyle = this.rgb(C.agent); ctx.beginPath();
    pts.forEach(([px, py], i) => {
      const X = cx + px * cos - py * sin, Y = cy + px * sin + py * cos;
      if (i === 0) ctx.moveTo(X, Y); else ctx.lineTo(X, Y);
    });
    ctx.closePath(); ctx.fill();
  },
  // Frame t of a recorded episode: the layout the step acted on, the agent where the action took it.
  drawStep(canvas, episode, t) {
    const st = episode.steps[t];
    this.draw(canvas, this.parse(episode.layouts[st.layout]), st.goal, st.to, st.coin);
  },
};
