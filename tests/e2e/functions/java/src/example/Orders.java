package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.util.List;

// A handler taking and returning plain classes (decoded from and encoded to JSON).
public class Orders implements RequestHandler<Orders.Order, Orders.Total> {
  public static class Item {
    public String sku;
    public int quantity;
    public double price;
  }

  public static class Order {
    private String id;
    private List<Item> items;

    public String getId() { return id; }
    public void setId(String id) { this.id = id; }
    public List<Item> getItems() { return items; }
    public void setItems(List<Item> items) { this.items = items; }
  }

  public static class Total {
    private final String orderId;
    private final double total;
    private final boolean large;

    Total(String orderId, double total) {
      this.orderId = orderId;
      this.total = total;
      this.large = total > 100;
    }

    public String getOrderId() { return orderId; }
    public double getTotal() { return total; }
    public boolean isLarge() { return large; }
  }

  @Override
  public Total handleRequest(Order order, Context context) {
    double sum = 0;
    for (Item i : order.getItems())
      sum += i.quantity * i.price;
    return new Total(order.getId(), sum);
  }
}
