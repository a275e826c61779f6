// PostGraphile 5's preset for bench/honest.py (bench/README.md says why each part is here): the
// Amber preset in production mode, the `nodes` table's type renamed (`Node` clashes with the
// Relay interface), `removed_at` made a condition. It exposes every table to anyone: a benchmark
// peer, not a deployment.
import { makePgService } from "postgraphile/adaptors/pg";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { jsonPgSmartTags } from "postgraphile/utils";

const RenameNodeTablePlugin = {
  name: "BenchRenameNodeTablePlugin",
  version: "1.0.0",
  inflection: {
    replace: {
      tableType(previous, options, codec) {
        const name = previous(codec);
        return name === "Node" ? "ClusterNode" : name;
      },
    },
  },
};

const LiveClustersConditionPlugin = jsonPgSmartTags({
  version: 1,
  config: {
    class: {
      clusters: { attribute: { removed_at: { tags: { behavior: ["+filterBy"] } } } },
    },
  },
});

const connectionString = process.env.DATABASE_URL;
if (!connectionString) {
  throw new Error("set DATABASE_URL to a postgres:// URL");
}

export default {
  extends: [PostGraphileAmberPreset],
  plugins: [RenameNodeTablePlugin, LiveClustersConditionPlugin],
  pgServices: [makePgService({ connectionString, schemas: ["public"] })],
  grafserv: { graphqlPath: "/graphql", graphiql: false, watch: false },
  grafast: { explain: false },
};
