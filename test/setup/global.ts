// Global test setup. The Kafka broker start is added here (see test/kafka/).
export default async function setup(): Promise<() => Promise<void>> {
  return async () => {};
}
