// PostGraphile 5's preset for the benchmark (bench/honest.py): the Amber preset over the same
// PostgreSQL database clusterql uses, in production mode, without GraphiQL or schema watching.
//
// The `nodes` table's type would be called `Node`, which clashes with the `Node` interface of
// PostGraphile's Relay global ids: the type is renamed here, in the inflection, not in the
// database. Unindexed columns get no `condition` field by default (clusters.removed_at has only
// partial indexes), so a smart tag lets the benchmark's query ask for live clusters
// (`condition: {removedAt: null}` is `removed_at IS NULL`), as clusterql filters tombstones out.
// Like any PostGraphile set-up without roles or RLS, this one exposes every table of
// the schema (api_tokens included) to anyone: it is a benchmark peer, not a deployment.
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
