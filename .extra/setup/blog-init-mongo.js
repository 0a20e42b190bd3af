// Creates blog_service's database users. Mounted into the mongo container's
// /docker-entrypoint-initdb.d/, so it runs once, on the first start with an
// empty data volume, as the root user (MONGO_INITDB_ROOT_USERNAME).
//
// It only creates users (CONTRACT §2.12); blog_service creates its
// collections and indexes itself. Do not add inserts here.
//
// The users and the password match blog_service/.env.example
// (DB_USER=blog-<env>-db-user, DB_USER_PWD=changeit): local-use values.
const blogDatabases = ["blog-prod-db", "blog-dev-db", "blog-test-db"];

for (const name of blogDatabases) {
  const database = db.getSiblingDB(name);
  const user = `${name}-user`;
  if (database.getUser(user) === null) {
    database.createUser({
      user: user,
      pwd: "changeit",
      roles: [{ role: "readWrite", db: name }],
    });
    print(`created user ${user} on ${name}`);
  } else {
    print(`user ${user} on ${name} already exists`);
  }
}
