export { BACKOFF_BASE_MS, BACKOFF_MAX_MS } from './backoff.js';
export type { PickOptions } from './candidates.js';
export {
  DEFAULT_EJECTION_DURATION,
  DEFAULT_EJECTION_ERRORS,
  DEFAULT_EJECTION_WINDOW,
  type EjectionOptions,
} from './ejection.js';
export {
  DeregisteredError,
  InvalidRegistrationError,
  MalformedInstanceError,
  NoInstancesError,
  type RegistrationField,
  ServiceSetClosedError,
} from './errors.js';
export {
  DEFAULT_FAILURE_THRESHOLD,
  DEFAULT_HEALTH_INTERVAL,
  DEFAULT_HEALTH_TIMEOUT,
  DEFAULT_SUCCESS_THRESHOLD,
  type HealthCheckFunction,
  type HealthCheckOptions,
  type HealthState,
} from './health-check.js';
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
export type { ReadyOptions } from './ready.js';
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
  type ServiceChange,
  ServiceSet,
  type ServiceSetEvents,
  type ServiceSetOptions,
} from './service-set.js';
export { type InstanceStatus, NAME_PATTERN } from './validate.js';
