export { BACKOFF_BASE_MS, BACKOFF_MAX_MS } from './backoff.js';
export {
  DeregisteredError,
  InvalidRegistrationError,
  MalformedInstanceError,
  NoInstancesError,
  type RegistrationField,
  ServiceSetClosedError,
} from './errors.js';
export {
  DEFAULT_WEIGHT,
  type InstanceDescription,
  type ServiceInstance,
  WIRE_VERSION,
} from './instance.js';
export {
  type Picker,
  type PickerOptions,
  type PickStrategy,
  pickerFor,
  randomPicker,
  roundRobinPicker,
  weightedPicker,
} from './pickers.js';
export {
  type DeregisterOptions,
  Registration,
  type RegistrationEvents,
  type RegistrationUpdate,
} from './registration.js';
export {
  DEFAULT_PREFIX,
  DEFAULT_TTL,
  type RegisterOptions,
  Registry,
  type RegistryOptions,
} from './registry.js';
export {
  type ChangesOptions,
  type PickOptions,
  type ReadyOptions,
  type ServiceChange,
  ServiceSet,
  type ServiceSetEvents,
} from './service-set.js';
export { type InstanceStatus, NAME_PATTERN } from './validate.js';
