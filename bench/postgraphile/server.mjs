// PostGraphile 5 on one port of 127.0.0.1, plus GET /healthz for the benchmark's start-up check.
//   DATABASE_URL=postgres://... node server.mjs PORT
import { createServer } from "node:http";
import { postgraphile } from "postgraphile";
import { grafserv } from "postgraphile/grafserv/node";
import preset from "./graphile.config.mjs";

const port = Number(process.argv[2]);
const pgl = postgraphile(preset);
const serv = pgl.createServ(grafserv);
await pgl.getSchema(); // build the schema before /healthz says yes
const graphql = serv.createHandler();

const server = createServer((req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(200, { "content-type": "text/plain" }).end("ok");
    return;
  }
  graphql(req, res);
});
server.keepAliveTimeout = 60_000;
server.listen(port, "127.0.0.1");

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    Promise.resolve(pgl.release()).finally(() => process.exit(0));
  });
}
