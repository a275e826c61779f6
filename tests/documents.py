"""GraphQL documents that several test modules send."""

COUNT = "{ clusters { totalCount } }"
# A report answered with its id only: for tests about everything but the answer's content.
REPORT = "mutation R($input: ClusterReport!) { reportCluster(input: $input) { id } }"
REMOVE = "mutation Remove($id: ID!) { removeCluster(id: $id) }"
