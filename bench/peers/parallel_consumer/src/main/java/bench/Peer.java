package bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.confluent.parallelconsumer.ParallelConsumerOptions;
import io.confluent.parallelconsumer.ParallelConsumerOptions.ProcessingOrder;
import io.confluent.parallelconsumer.ParallelStreamProcessor;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The Confluent Parallel Consumer peer: KEY ordering (one record in flight per key, many keys at
 * once, up to the concurrency given), each record turned into its Talon.One Integration API call
 * as talon-stream translates it, made with the JDK's HTTP client, Talon.One's answer produced to
 * an output topic. Transient answers (409, 429, 5xx, no answer) are retried with back-off.
 *
 * <p>Arguments: bootstrap input output group talonUrl apiKey concurrency
 */
public final class Peer {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Set<Integer> RETRY = Set.of(408, 409, 429, 500, 502, 503, 504);
  private static final UUID NAMESPACE = UUID.fromString("0b6f5c1e-7d3a-4a55-9c8e-3f1f0e2a6d41");

  private Peer() {}

  public static void main(String[] args) {
    String bootstrap = args[0], input = args[1], output = args[2], group = args[3];
    String talon = args[4], apiKey = args[5];
    int concurrency = Integer.parseInt(args[6]);

    Properties consumerProps = new Properties();
    consumerProps.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    consumerProps.put(ConsumerConfig.GROUP_ID_CONFIG, group);
    consumerProps.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    consumerProps.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    Properties producerProps = new Properties();
    producerProps.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    producerProps.put(ProducerConfig.LINGER_MS_CONFIG, 20);
    var consumer =
        new KafkaConsumer<>(consumerProps, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    var producer =
        new KafkaProducer<>(producerProps, new ByteArraySerializer(), new ByteArraySerializer());
    var options =
        ParallelConsumerOptions.<byte[], byte[]>builder()
            .ordering(ProcessingOrder.KEY)
            .maxConcurrency(concurrency)
            .consumer(consumer)
            .producer(producer)
            .build();
    ParallelStreamProcessor<byte[], byte[]> processor =
        ParallelStreamProcessor.createEosStreamProcessor(options);
    processor.subscribe(java.util.List.of(input));
    HttpClient http =
        HttpClient.newBuilder()
            .version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10))
            .build();
    processor.pollAndProduce(
        context -> {
          ConsumerRecord<byte[], byte[]> record = context.getSingleConsumerRecord();
          byte[] answer = call(http, talon, apiKey, record);
          return new ProducerRecord<>(output, record.key(), answer);
        });
    Runtime.getRuntime().addShutdownHook(new Thread(processor::close));
  }

  private static byte[] call(
      HttpClient http, String talon, String apiKey, ConsumerRecord<byte[], byte[]> record) {
    try {
      JsonNode event = JSON.readTree(record.value());
      Request request = translate(event);
      String key = idempotencyKey(record);
      HttpRequest.Builder builder =
          HttpRequest.newBuilder(URI.create(talon + request.target))
              .timeout(Duration.ofSeconds(10))
              .header("Authorization", "ApiKey-v1 " + apiKey)
              .header("Idempotency-Key", key);
      HttpRequest.BodyPublisher body =
          request.body == null
              ? HttpRequest.BodyPublishers.noBody()
              : HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(request.body));
      if (request.body != null) {
        builder.header("Content-Type", "application/json");
      }
      HttpRequest httpRequest = builder.method(request.method, body).build();
      long delayMs = 50;
      while (true) {
        HttpResponse<byte[]> response = null;
        try {
          response = http.send(httpRequest, HttpResponse.BodyHandlers.ofByteArray());
        } catch (java.io.IOException e) {
          // no answer: retried below
        }
        if (response != null && !RETRY.contains(response.statusCode())) {
          ObjectNode answer = JSON.createObjectNode();
          answer.put("status", response.statusCode());
          if (response.body().length > 0) {
            answer.set("effects", JSON.readTree(response.body()).path("effects"));
          }
          return JSON.writeValueAsBytes(answer);
        }
        Thread.sleep(ThreadLocalRandom.current().nextLong(delayMs + 1));
        delayMs = Math.min(delayMs * 2, 5000);
      }
    } catch (Exception e) {
      throw new RuntimeException(e);
    }
  }

  /** The worker's Idempotency-Key of a record: a UUID derived from its coordinates. */
  private static String idempotencyKey(ConsumerRecord<byte[], byte[]> record) {
    String name = record.topic() + "/" + record.partition() + "/" + record.offset();
    return uuid5(name).toString();
  }

  private static UUID uuid5(String name) {
    try {
      var sha1 = java.security.MessageDigest.getInstance("SHA-1");
      long msb = NAMESPACE.getMostSignificantBits(), lsb = NAMESPACE.getLeastSignificantBits();
      byte[] ns = new byte[16];
      for (int i = 0; i < 8; i++) {
        ns[i] = (byte) (msb >>> (8 * (7 - i)));
        ns[8 + i] = (byte) (lsb >>> (8 * (7 - i)));
      }
      sha1.update(ns);
      byte[] hash = sha1.digest(name.getBytes(StandardCharsets.UTF_8));
      hash[6] = (byte) ((hash[6] & 0x0f) | 0x50);
      hash[8] = (byte) ((hash[8] & 0x3f) | 0x80);
      long high = 0, low = 0;
      for (int i = 0; i < 8; i++) {
        high = (high << 8) | (hash[i] & 0xff);
        low = (low << 8) | (hash[8 + i] & 0xff);
      }
      return new UUID(high, low);
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private record Request(String method, String target, ObjectNode body) {}

  /** The call an event stands for, as talon-stream's translation makes it (docs/events.md). */
  private static Request translate(JsonNode event) {
    String type = event.path("type").asText();
    JsonNode payload = event.path("payload");
    String session = event.path("sessionId").asText(null);
    String profile = event.path("profileId").asText(null);
    switch (type) {
      case "cart.updated", "order.placed", "order.cancelled" -> {
        ObjectNode customerSession = JSON.createObjectNode();
        customerSession.put(
            "state",
            Map.of("cart.updated", "open", "order.placed", "closed", "order.cancelled", "cancelled")
                .get(type));
        if (profile != null) {
          customerSession.put("profileId", profile);
        }
        if (!type.equals("order.cancelled") && payload.isObject()) {
          payload.fields().forEachRemaining(f -> customerSession.set(f.getKey(), f.getValue()));
        }
        ObjectNode body = JSON.createObjectNode();
        body.set("customerSession", customerSession);
        body.putArray("responseContent").add("customerSession");
        return new Request("PUT", "/v2/customer_sessions/" + encode(session), body);
      }
      case "order.items_returned" -> {
        ObjectNode body = JSON.createObjectNode();
        body.putObject("return").set("returnedCartItems", payload.path("items"));
        body.putArray("responseContent").add("customerSession");
        return new Request("POST", "/v2/customer_sessions/" + encode(session) + "/returns", body);
      }
      case "order.reopened" -> {
        return new Request("PUT", "/v2/customer_sessions/" + encode(session) + "/reopen", null);
      }
      case "customer.updated" -> {
        ObjectNode body = JSON.createObjectNode();
        if (payload.has("attributes")) {
          body.set("attributes", payload.get("attributes"));
        }
        if (payload.has("audiencesChanges")) {
          body.set("audiencesChanges", payload.get("audiencesChanges"));
        }
        return new Request(
            "PUT", "/v2/customer_profiles/" + encode(profile) + "?runRuleEngine=true", body);
      }
      case "customer.event" -> {
        ObjectNode body = JSON.createObjectNode();
        body.put("type", payload.path("eventType").asText());
        body.put("profileId", profile);
        for (String name : new String[] {"attributes", "storeIntegrationId", "loyaltyCards"}) {
          if (payload.has(name)) {
            body.set(name, payload.get(name));
          }
        }
        return new Request("POST", "/v2/events?silent=no", body);
      }
      default -> throw new IllegalArgumentException("unknown event type " + type);
    }
  }

  private static String encode(String id) {
    return URLEncoder.encode(id, StandardCharsets.UTF_8).replace("+", "%20");
  }
}
